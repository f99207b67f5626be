/* The dock (装车交接, docs/dock.md): the loader picks the truck (a carrier, or a mixed one), scans
 * each parcel as it goes on, and taps 装车完成 when the truck is full: the manifest, printed on the
 * bench printer or downloaded as CSV.
 *
 * A parcel the edge refuses says why at once; a frozen one or one with a void label brings the
 * station's alarm from the edge ("pull it"): the scans made meanwhile wait under it (the scan
 * page's queue, S.scanQueue: a scan_id each, kept in localStorage, one at a time, in order) and
 * go out after a person tapped it away. A retry of a scan carries the same scan_id, so the edge
 * counts a parcel once and raises its alarm once. Every word is from the catalogue: the edge's
 * refusals are shown by their code (err_<code>), never by its English message. */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el, make = S.make;
  var station = S.config.station;
  var KEY = 'scanedge.dock.' + station;
  var API = '/api/v1/dock/batches';
  var saved = S.store(KEY) || {};
  var history = saved.history || [];   // the last 10 scans: {code, kind, text, at}
  var batch = null;                    // the batch on this truck (open, or closed just now)
  var manifestJob = null;              // the manifest's print job, followed to "printed"
  var resumed = false;                 // the batch on the dock before a reload is known again
  var focusScan = function () {};

  function save() {
    S.store(KEY, { history: history, batch_id: batch ? batch.batch_id : null });
  }
  function enc(s) { return encodeURIComponent(s); }
  var word = S.word, errorText = S.errorText, retryable = S.retryable;
  function carrierName(code) { return code ? code : t('dock_mixed'); }

  // --- what the loader sees at once -----------------------------------------------------------

  var panel = S.verdictPanel('dock', function (kind) { return word('dock_word_', kind); }, history,
    function () { save(); });
  var say = panel.say, remember = panel.remember, renderHistory = panel.render, flash = panel.alarm;

  // --- the batch ------------------------------------------------------------------------------

  function fact(dl, label, value) {
    if (value === undefined || value === null || value === '') return;
    dl.appendChild(make('dt', null, label));
    dl.appendChild(make('dd', null, value));
  }
  function parcelRow(p, cls) {
    var li = make('li', cls || null);
    li.dataset.order = p.order_id;
    li.appendChild(make('span', 'grow dock-code', (p.tracking_number || '-') + '  ' + p.order_id));
    if (p.carrier) li.appendChild(make('span', 'muted', p.carrier));
    return li;
  }

  function setBatch(b) {
    batch = b;
    save();
    render();
  }
  function render() {
    var b = batch;
    el('dock-start').hidden = !!b;
    el('dock-batch').hidden = !b;
    el('dock-actions').hidden = !b || b.state !== 'open';
    el('dock-manifest').hidden = !b || !b.manifest;
    if (!b) return;
    el('dock-batch-carrier').textContent = t('dock_truck_of', { carrier: carrierName(b.carrier) });
    el('dock-count').textContent = b.count;
    el('dock-closed').hidden = b.state !== 'closed';
    var dl = el('dock-facts');
    dl.textContent = '';
    fact(dl, t('dock_opened'), S.clock(b.opened_at) + (b.operator ? ' · ' + b.operator : ''));
    if (b.scanned_twice) fact(dl, t('dock_scanned_twice'), String(b.scanned_twice));
    var list = el('dock-parcels');
    list.textContent = '';
    b.parcels.slice().reverse().forEach(function (p) {
      var li = parcelRow(p, p.frozen ? 'dock-frozen' : p.scans > 1 ? 'dock-twice' : null);
      if (p.scans > 1) li.appendChild(make('span', 'badge dock-badge-twice', t('dock_twice', { n: p.scans })));
      if (p.frozen && b.state === 'open') {
        li.appendChild(make('span', 'badge badge-frozen', t('dock_frozen_badge')));
        var out = make('button', 'btn btn-warn btn-small dock-remove', t('dock_remove'));
        out.type = 'button';
        out.dataset.order = p.order_id;
        out.addEventListener('click', function () { remove(p.order_id, out); });
        li.appendChild(out);
      }
      list.appendChild(li);
    });
    var pull = b.to_pull || [];
    el('dock-pull-box').hidden = !pull.length || b.state !== 'open';
    el('dock-pull').textContent = '';
    pull.forEach(function (p) { el('dock-pull').appendChild(parcelRow(p, 'dock-frozen')); });
    var missing = b.not_scanned || [];
    el('dock-missing-box').hidden = !missing.length || b.state !== 'open';
    el('dock-missing-count').textContent = missing.length;
    el('dock-missing').textContent = '';
    missing.forEach(function (p) { el('dock-missing').appendChild(parcelRow(p)); });
    renderActions();
    if (b.manifest) renderManifest(b.manifest);
  }

  /* What keeps 装车完成 disabled, in words. */
  function why() {
    var b = batch, out = [];
    if (!b || b.state !== 'open') return out;
    if (!b.count) out.push(t('dock_why_empty'));
    if (b.frozen && b.frozen.length) out.push(t('dock_why_frozen', { orders: b.frozen.join(', ') }));
    return out;
  }
  function renderActions() {
    var w = why();
    el('dock-close').disabled = !batch || batch.state !== 'open' || w.length > 0 || S.alarm.isUp() || closing;
    el('dock-close-why').hidden = !w.length;
    el('dock-close-why').textContent = w.join(' · ');
  }

  function reload(id) {
    return S.api('GET', API + '/' + enc(id)).then(function (r) {
      if (r.ok) setBatch(r.body);
      else if (r.status === 404) setBatch(null);
    });
  }

  el('dock-open').addEventListener('click', function () {
    var b = this, carrier = el('dock-carrier').value;
    b.disabled = true;
    S.api('POST', API, carrier ? { carrier: carrier, station: station } : { station: station }).then(function (r) {
      if (!r.ok) { say('bad', errorText(r), 'refused'); return; }
      setBatch(r.body);
      say('idle', t('dock_scan_ready', { carrier: carrierName(r.body.carrier) }));
      return reload(r.body.batch_id);  // with the labels still expected for this truck
    }, function () { say('bad', t('err_network'), 'refused'); })
      .then(function () { b.disabled = false; focusScan(); });
  });
  el('dock-leave').addEventListener('click', leave);
  el('dock-next').addEventListener('click', leave);
  function leave() {
    setBatch(null);
    manifestJob = null;
    el('dock-print-state').textContent = '';
    say('idle', t('dock_choose_truck'));
    focusScan();
  }

  function remove(orderId, button) {
    if (!batch) return;
    button.disabled = true;
    S.api('DELETE', API + '/' + enc(batch.batch_id) + '/parcels/' + enc(orderId)).then(function (r) {
      if (r.ok) {
        setBatch(r.body);
        say('ok', t('dock_removed', { order: orderId }), 'removed');
        remember(orderId, 'removed', t('dock_removed', { order: orderId }));
        return reload(r.body.batch_id);
      }
      button.disabled = false;
      say('bad', errorText(r), 'refused');
    }, function () { button.disabled = false; say('bad', t('err_network'), 'refused'); });
  }

  // --- scans ----------------------------------------------------------------------------------

  var queue = S.scanQueue('scanedge.dock.queue.' + station, function (item) {
    if (!batch || batch.state !== 'open') {
      say('bad', t('dock_no_truck'), 'refused');
      S.play('error');
      remember(item.code, 'refused', t('dock_no_truck'));
      return Promise.resolve('done');
    }
    var id = batch.batch_id;
    return S.api('POST', API + '/' + enc(id) + '/scans', { code: item.code, scan_id: item.scan_id }, 6000)
      .then(function (r) {
        if (retryable(r)) return { retry: errorText(r) };
        if (r.ok) {
          var b = r.body, dup = b.verdict === 'duplicate';
          var text = dup ? t('dock_duplicate', { order: b.order_id })
            : t(b.flags.indexOf('no_label_here') >= 0 ? 'dock_accepted_no_label' : 'dock_accepted', { order: b.order_id });
          if (batch && batch.batch_id === id) {
            setBatch(Object.assign({}, b.batch, { not_scanned: (batch.not_scanned || []).filter(function (p) {
              return p.order_id !== b.order_id; }), to_pull: batch.to_pull }));
          }
          say(dup ? 'pending' : 'ok', text, b.verdict);
          remember(item.code, b.verdict, text);
          S.play(dup ? 'error' : 'ok');
          if (dup) S.vibrate([200]);
          return 'done';
        }
        refused(item, r);
        return 'done';
      });
  }, { canSend: function () { return resumed; }, after: renderActions });

  function refused(item, r) {
    var b = r.body || {}, key = 'dock_refused_' + b.error;
    var text = S.config.messages[key] !== undefined ? t(key, { order: b.order_id || item.code, batch: b.open_batch || b.loaded_in || '' })
      : errorText(r);
    say('bad', text, b.verdict || 'refused');
    remember(item.code, b.verdict || 'refused', text);
    flash();
    if (b.error === 'batch_closed' && batch) reload(batch.batch_id);
  }

  // --- 装车完成: the manifest ---------------------------------------------------------------------

  var closing = false;
  el('dock-close').addEventListener('click', function (ev) {
    if (ev.detail === 0 || !batch || closing || S.alarm.isUp() || why().length) return; // a tap, not the scanner's Enter
    closing = true;
    renderActions();
    var id = batch.batch_id;
    S.api('POST', API + '/' + enc(id) + '/close', {}, 15000).then(function (r) {
      if (r.ok) {
        setBatch(r.body.batch);
        say('ok', t('dock_loaded', { n: r.body.manifest.counts.parcels, carrier: carrierName(r.body.batch.carrier) }), 'loaded');
        S.play('ok');
        el('dock-manifest').scrollIntoView({ block: 'start' });
        return;
      }
      say('bad', errorText(r), 'refused');
      flash();
      return reload(id);
    }, function () {
      // the edge may have closed it: ask what the batch is now instead of closing twice
      say('bad', t('err_network'), 'refused');
      return reload(id);
    }).then(function () { closing = false; renderActions(); focusScan(); });
  });

  function renderManifest(m) {
    var list = el('dock-counts');
    list.textContent = '';
    var total = make('li', 'dock-total');
    total.appendChild(make('span', 'grow', t('dock_total')));
    total.appendChild(make('b', null, String(m.counts.parcels)));
    list.appendChild(total);
    Object.keys(m.counts.by_carrier).forEach(function (c) {
      var li = make('li');
      li.dataset.carrier = c;
      li.appendChild(make('span', 'grow', c === '-' ? t('dock_no_carrier') : c));
      li.appendChild(make('b', null, String(m.counts.by_carrier[c])));
      list.appendChild(li);
    });
    var notes = [];
    if (m.counts.not_scanned) notes.push(t('dock_manifest_not_scanned', { n: m.counts.not_scanned }));
    if (m.counts.to_pull) notes.push(t('dock_manifest_to_pull', { n: m.counts.to_pull }));
    el('dock-manifest-missing').hidden = !notes.length;
    el('dock-manifest-missing').textContent = notes.join(' · ');
    el('dock-csv').href = API + '/' + enc(m.batch_id) + '/manifest.csv';
    if (batch && batch.manifest_job && !manifestJob) { manifestJob = batch.manifest_job; followJob(null); }
  }

  el('dock-print').addEventListener('click', function () {
    if (!batch || !batch.manifest) return;
    var b = this;
    b.disabled = true;
    S.api('POST', API + '/' + enc(batch.batch_id) + '/manifest/print', {}).then(function (r) {
      if (r.ok) { manifestJob = r.body.job.job_id; followJob(r.body.job); return; }
      el('dock-print-state').textContent = errorText(r);
    }, function () { el('dock-print-state').textContent = t('err_network'); })
      .then(function () { b.disabled = false; focusScan(); });
  });
  function followJob(job) {
    var p = el('dock-print-state');
    if (!manifestJob) return;
    var state = job ? job.state : (p.dataset.state || 'queued');
    p.dataset.state = state;
    p.textContent = t(state === 'printed' ? 'dock_print_done' : 'dock_print_state', { state: word('job_', state) });
    if (!job) S.api('GET', '/api/v1/print-jobs/' + enc(manifestJob)).then(function (r) {
      if (r.ok && r.body.job_id === manifestJob) followJob(r.body);
    }, function () {});
  }
  S.on('job', function (j) { if (manifestJob && j.job_id === manifestJob) followJob(j); });

  // a parcel of this batch frozen at the hub: its alarm comes from the stream; show it in the list
  S.on('alarm', function () { if (batch && batch.state === 'open') reload(batch.batch_id); });
  S.on('freeze', function () { if (batch && batch.state === 'open') reload(batch.batch_id); });
  S.on('alarm_up', renderActions);
  S.on('alarms_cleared', renderActions);

  window.ScanEdge.dock = {
    batch: function () { return batch; },
    queue: queue.items
  };

  focusScan = S.wedge(el('scan-input'), el('kbd-toggle'), queue.push);
  renderHistory();
  (saved.batch_id ? reload(saved.batch_id) : Promise.resolve(null)).then(null, function () {})
    .then(function () { resumed = true; queue.pump(); });
})();
