/* Multi-parcel orders at the bench (docs/parcels.md): split the open order into N parcels, pick
 * the box being packed (the next scanned items go in it), and print each parcel's label 1/3,
 * 2/3 ... through its own gate. The edge keeps the split; this card shows the order's
 * `parcels` as every scan answer and order view carry them. */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el;
  var order = null, jobs = {};  // the open order; parcel label jobs by "order:parcel_no"
  var keyOf = {};  // job id -> "order:parcel_no" (a job's own JSON does not say its parcel)

  function path(suffix) {
    return '/api/v1/orders/' + encodeURIComponent(order.order_id) + '/parcels' + (suffix || '');
  }
  function say(text) { el('parcels-status').textContent = text || ''; }
  function failed(r) {
    var b = r.body || {};
    var problems = (b.problems || []).map(function (p) { return S.msg(p); }).join(' · ');
    return t('parcels_failed', { message: problems || b.message || r.status });
  }

  /* The order again from the edge (after a split or a box change), through the order panel. */
  function reload() {
    if (!order) return Promise.resolve();
    return S.api('GET', '/api/v1/orders/' + encodeURIComponent(order.order_id) +
                 '?station=' + encodeURIComponent(S.config.station))
      .then(function (r) { if (r.ok) S.renderOrder(r.body, null); });
  }

  function post(suffix, body, done) {
    if (!order || S.alarm.isUp()) return;
    say('…');
    S.api('POST', path(suffix), body).then(function (r) {
      if (r.status >= 400) { say(failed(r)); return; }
      say(done ? done(r.body) : '');
      reload();
    }, function () { say(t('parcels_offline')); });
  }

  function row(p) {
    var li = S.make('li', 'parcel' + (p.open ? ' parcel-open' : ''));
    li.dataset.parcel = p.parcel_no;
    li.appendChild(S.make('span', 'parcel-label', t('parcels_box', { label: p.label })));
    var meta = t('parcels_items', { n: p.items }) +
      (p.planned_items !== null && p.planned_items !== undefined ? '/' + p.planned_items : '') +
      (p.tracking_number ? ' · ' + p.tracking_number : '');
    li.appendChild(S.make('span', 'parcel-meta muted', ' ' + meta));
    if (p.open) li.appendChild(S.make('span', 'badge parcel-packing', t('parcels_packing')));
    var key = order.order_id + ':' + p.parcel_no;
    if (p.job) keyOf[p.job.job_id] = key;
    var job = jobs[key] || p.job;
    if (job) {
      var word = t('job_' + job.state);
      li.appendChild(S.make('span', 'job-state job-' + job.state,
                            word.indexOf('job_') === 0 ? job.state : word));
    }
    var lines = (p.lines || []).filter(function (l) { return l.packed; })
      .map(function (l) { return (l.name || l.sku) + '×' + l.packed; }).join('、');
    if (lines) li.appendChild(S.make('div', 'parcel-lines muted', lines));
    if (p.problems && p.problems.length) {
      li.appendChild(S.make('div', 'parcel-why', p.problems.map(S.msg).join(' · ')));
    }
    if (!p.open) {
      var open = S.make('button', 'btn btn-small parcel-open-btn', t('parcels_pack_this'));
      open.type = 'button';
      open.addEventListener('click', function () { post('/open', { parcel_no: p.parcel_no }); });
      li.appendChild(open);
    }
    var print = S.make('button', 'btn btn-small btn-primary parcel-print',
                       t('parcels_print', { label: p.label }));
    print.type = 'button';
    print.disabled = !!(p.problems && p.problems.length) || !!order.freeze;
    print.addEventListener('click', function () {
      print.disabled = true;
      // one idempotency key per tap: a retry after a lost answer is the same job
      post('/' + p.parcel_no + '/label', { idempotency_key: 'parcel-' + order.order_id + '-' +
            p.parcel_no + '-' + Date.now() }, function (b) {
        keyOf[b.job_id] = key;
        if (!jobs[key] || jobs[key].job_id !== b.job_id) jobs[key] = { job_id: b.job_id, state: b.state };
        return t('parcels_sent', { label: p.label });
      });
    });
    li.appendChild(print);
    return li;
  }

  function render() {
    var card = el('parcels-card');
    card.hidden = !order;
    if (!order) return;
    var split = order.parcels;
    var list = el('parcels-list');
    list.textContent = '';
    el('parcels-summary').textContent = split ? t('parcels_summary', { n: split.count }) : t('parcels_single');
    if (split) split.parcels.forEach(function (p) { list.appendChild(row(p)); });
    el('parcels-count').value = split ? split.count : 2;
  }

  el('parcels-split').addEventListener('click', function () {
    var n = parseInt(el('parcels-count').value, 10);
    if (!(n >= 1 && n <= 50)) { say(t('parcels_bad_count')); return; }
    post('', { count: n }, function (b) { return t('parcels_split_done', { n: b.count }); });
  });
  S.on('order', function (o) {
    if (!o || !order || o.order_id !== order.order_id) say('');
    order = o;
    render();
  });
  S.on('job', function (j) {
    if (j && j.kind === 'parcel' && keyOf[j.job_id]) {
      jobs[keyOf[j.job_id]] = j;
      if (order && j.order_id === order.order_id) render();
    }
  });
}());
