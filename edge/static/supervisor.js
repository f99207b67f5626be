/* The supervisor: alarms (acknowledge here too), freezes nobody acknowledged yet, conflicts
 * waiting for a decision, the interception report, sync and printer status. The page reads
 * GET /api/v1/overview and reads it again whenever the stream says something changed. */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el, make = S.make;
  var timer = null;

  function refresh(delay) {
    clearTimeout(timer);
    timer = setTimeout(load, delay === undefined ? 200 : delay);
  }
  function load() {
    S.api('GET', '/api/v1/overview').then(function (r) {
      if (r.ok) render(r.body);
    }, function () {}).then(function () { clearTimeout(timer); timer = setTimeout(load, 15000); });
  }

  function rows(id, items, fill) {
    var list = el(id);
    list.textContent = '';
    if (!items.length) { list.appendChild(make('li', 'muted', t('sup_none'))); return; }
    items.forEach(function (item) { var li = make('li'); fill(li, item); list.appendChild(li); });
  }
  function count(id, n) {
    el(id).textContent = n;
    el(id).classList.toggle('hot', n > 0);
  }
  function facts(id, pairs) {
    var dl = el(id);
    dl.textContent = '';
    pairs.forEach(function (p) {
      dl.appendChild(make('dt', null, p[0]));
      dl.appendChild(make('dd', p[2] || null, p[1] === null || p[1] === undefined ? '—' : p[1]));
    });
  }

  function ackButton(alarm) {
    var b = make('button', 'btn btn-small', t('alarm_ack'));
    b.type = 'button';
    b.addEventListener('click', function (ev) {
      if (ev.detail === 0) return; // a tap, not a scanner's Enter
      S.api('POST', '/api/v1/alarms/' + encodeURIComponent(alarm.alarm_id) + '/ack', {})
        .then(function () { refresh(0); });
    });
    return b;
  }

  function alarmRow(li, a) {
    li.className = a.active ? 'active' : '';
    li.dataset.alarmId = a.alarm_id;
    li.appendChild(make('strong', null, a.active ? t('sup_active') : t('sup_acked')));
    li.appendChild(make('span', 'grow', S.msg(a.message) || a.type));
    li.appendChild(make('span', 'muted', [a.order_id, a.station, S.clock(a.created_at)]
      .filter(Boolean).join(' · ') + (a.acked_by ? ' · ✓ ' + a.acked_by : '')));
    if (a.active) li.appendChild(ackButton(a));
  }

  function render(o) {
    var active = o.alarms.filter(function (a) { return a.active; });
    count('sup-alarms-count', active.length);
    rows('sup-alarms', active.concat(o.alarms.filter(function (a) { return !a.active; })).slice(0, 30), alarmRow);
    count('sup-unacked-count', o.unacked_freeze_alarms.length);
    rows('sup-unacked', o.unacked_freeze_alarms, alarmRow);
    count('sup-conflicts-count', o.conflicts.length);
    rows('sup-conflicts', o.conflicts, function (li, f) {
      li.className = 'active';
      li.appendChild(make('strong', null, f.order_id));
      li.appendChild(make('span', 'grow', t('sup_conflicts')));
      li.appendChild(make('span', 'muted', S.clock(f.received_at)));
    });
    rows('sup-freezes', o.freezes, function (li, f) {
      li.dataset.orderId = f.order_id;
      li.appendChild(make('strong', null, f.order_id));
      li.appendChild(make('span', 'grow', f.reason + ' · ' + f.source));
      li.appendChild(make('span', 'muted', S.clock(f.issued_at)));
      if (f.unacked_alarms.length) li.className = 'active';
    });
    var ic = o.interceptions;
    el('sup-int-summary').textContent = t('sup_intercepted', { n: ic.count, orders: ic.orders }) +
      (ic.median_s !== null ? ' · ' + t('sup_median', { m: ic.median_s, p: ic.p95_s }) : '');
    rows('sup-interceptions', ic.recent.slice(0, 10), function (li, i) {
      li.appendChild(make('strong', null, i.order_id));
      li.appendChild(make('span', 'grow', [i.action, i.reason, i.station, i.operator].filter(Boolean).join(' · ')));
      li.appendChild(make('span', 'muted', (i.seconds_since_freeze !== null ? i.seconds_since_freeze + ' s · ' : '') + S.clock(i.time)));
    });
    renderSync(o.sync);
    var p = o.printer, q = p.queue || {};
    var state = p.hold ? t('printer_' + p.hold) : p.warning ? t('printer_' + p.warning) : t('printer_ok');
    facts('sup-printer', [
      [t('printer'), p.printer + ' (' + p.model + ', ' + p.paper + ')'],
      [t('sup_state'), state, p.hold ? 'bad' : p.warning ? null : 'ok'],
      [t('print_jobs'), Object.keys(q).map(function (k) { return k + ' ' + q[k]; }).join(', ')],
      [t('sup_error'), p.last_error]
    ]);
    el('sup-updated').textContent = t('updated', { time: S.clock(Date.now()) });
  }

  function renderSync(s) {
    var hub = !s.hub ? [t('sup_standalone'), null] :
      s.online ? [t('sup_hub_online'), 'ok'] : [t('sup_hub_offline') + ' · ' + S.clock(s.offline_since), 'bad'];
    facts('sup-sync', [
      [t('sup_sync'), hub[0], hub[1]],
      [t('sup_outbox'), String(s.outbox_pending) +
        (s.outbox_parked ? ' · ' + t('sup_parked', { n: s.outbox_parked }) : ''), null],
      [t('sup_oldest'), s.oldest_pending_time ? S.clock(s.oldest_pending_time) : null],
      [t('sup_freeze_status'), t('freeze_status_' + s.freeze_status), s.freeze_status === 'unknown' ? 'bad' : null]
    ]);
  }

  ['scan', 'alarm', 'alarm_ack', 'job', 'printer_alarm', 'freeze', 'unfreeze', 'conflict',
   'interception', 'state'].forEach(function (kind) { S.on(kind, function () { refresh(); }); });
  S.on('status', function (st) { if (st.sync) renderSync(st.sync); });
  load();
})();
