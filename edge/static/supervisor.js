/* The supervisor: alarms (acknowledge here too), freezes nobody acknowledged yet, conflicts
 * waiting for a decision (decided here: 发货 / 取消, through the hub), the interception report,
 * sync and printer status. The page reads GET /api/v1/overview and reads it again whenever the
 * stream says something changed; the conflicts come from the hub (GET /api/v1/conflicts), read
 * every few seconds while the page is open and whenever a freeze or a decision arrives. */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el, make = S.make;
  var timer = null;
  var CONFLICT_POLL_MS = 5000;
  /* A word from the catalogue for a value the edge sends (reason, source, action, job state),
   * the value itself when the catalogue has none: never a raw key on the page. */
  function word(prefix, value) {
    if (value === null || value === undefined) return '';
    var key = prefix + value;
    var s = t(key);
    return s === key ? String(value) : s;
  }

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
    decide.local = o.conflicts;
    if (!decide.fromHub) decide.renderLocal();
    rows('sup-freezes', o.freezes, function (li, f) {
      li.dataset.orderId = f.order_id;
      li.appendChild(make('strong', null, f.order_id));
      li.appendChild(make('span', 'grow', word('sup_reason_', f.reason) + ' · ' + word('sup_source_', f.source)));
      li.appendChild(make('span', 'muted', S.clock(f.issued_at)));
      if (f.unacked_alarms.length) li.className = 'active';
    });
    var ic = o.interceptions;
    el('sup-int-summary').textContent = t('sup_intercepted', { n: ic.count, orders: ic.orders }) +
      (ic.median_s !== null ? ' · ' + t('sup_median', { m: ic.median_s, p: ic.p95_s }) : '');
    rows('sup-interceptions', ic.recent.slice(0, 10), function (li, i) {
      li.appendChild(make('strong', null, i.order_id));
      li.appendChild(make('span', 'grow', [word('sup_action_', i.action), word('sup_reason_', i.reason),
        i.station, i.operator].filter(Boolean).join(' · ')));
      li.appendChild(make('span', 'muted', (i.seconds_since_freeze !== null ? i.seconds_since_freeze + ' s · ' : '') + S.clock(i.time)));
    });
    renderSync(o.sync);
    var p = o.printer, q = p.queue || {};
    var state = p.hold ? t('printer_' + p.hold) : p.warning ? t('printer_' + p.warning) : t('printer_ok');
    facts('sup-printer', [
      [t('printer'), p.printer + ' (' + p.model + ', ' + p.paper + ')'],
      [t('sup_state'), state, p.hold ? 'bad' : p.warning ? null : 'ok'],
      [t('print_jobs'), Object.keys(q).map(function (k) { return word('sup_job_', k) + ' ' + q[k]; }).join(', ')],
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

  // --- conflicts: decided here, through the hub ------------------------------------------------
  var decide = {
    local: [],       // the overview's needs_decision freezes (shown when the hub cannot be asked)
    fromHub: false,  // the list on the page came from the hub
    timer: null,
    pending: null,   // {order_id, decision} waiting for the confirmation
    load: function () {
      clearTimeout(decide.timer);
      S.api('GET', '/api/v1/conflicts').then(function (r) {
        if (r.ok) decide.renderHub(r.body);
        else decide.problem(r);
      }, function () { decide.problem(null); }).then(function () {
        clearTimeout(decide.timer);
        if (!document.hidden) decide.timer = setTimeout(decide.load, CONFLICT_POLL_MS);
      });
    },
    soon: function () { clearTimeout(decide.timer); decide.timer = setTimeout(decide.load, 300); },
    note: function (text) {
      var n = el('sup-conflicts-note');
      n.hidden = !text;
      n.textContent = text || '';
    },
    renderHub: function (body) {
      decide.fromHub = true;
      var buttons = body.can_decide && body.may_decide;
      decide.note(!body.may_decide ? t('sup_decide_role') :
        !body.can_decide ? t('sup_decide_cannot', { device: body.device_id }) : '');
      count('sup-conflicts-count', body.conflicts.length);
      rows('sup-conflicts', body.conflicts, function (li, c) {
        li.className = 'active conflict';
        li.dataset.orderId = c.order_id;
        li.appendChild(make('strong', null, c.order_id));
        li.appendChild(make('span', 'grow', (c.command_details || []).map(function (d) {
          var kind = d.kind === 'freeze' && d.reason === 'cancel' ? 'cancel' : d.kind;
          return word('sup_cmd_', kind) + ' ' + S.clock(d.issued_at);
        }).join(' · ')));
        li.appendChild(make('span', 'muted', t('sup_decide_detected', { time: S.clock(c.detected_at) })));
        if (buttons) li.appendChild(decide.buttons(c.order_id));
      });
    },
    renderLocal: function () {
      count('sup-conflicts-count', decide.local.length);
      rows('sup-conflicts', decide.local, function (li, f) {
        li.className = 'active';
        li.dataset.orderId = f.order_id;
        li.appendChild(make('strong', null, f.order_id));
        li.appendChild(make('span', 'grow', word('sup_reason_', f.reason)));
        li.appendChild(make('span', 'muted', S.clock(f.received_at)));
      });
    },
    problem: function (r) {
      decide.fromHub = false;
      var code = r && r.body && r.body.error;
      decide.note(!r ? t('err_network') : code === 'hub_unavailable' ? t('sup_decide_hub_down') :
        code === 'no_hub' ? t('sup_decide_no_hub') : code === 'forbidden' ? t('sup_decide_role') :
        code ? word('err_', code) : t('err_other', { status: r.status }));
      decide.renderLocal();
    },
    buttons: function (orderId) {
      var box = make('span', 'decide-buttons');
      [['ship', 'btn btn-ok'], ['cancel', 'btn btn-warn']].forEach(function (d) {
        var b = make('button', d[1] + ' decide-' + d[0], t('sup_decide_' + d[0]));
        b.type = 'button';
        b.addEventListener('click', function (ev) {
          if (ev.detail === 0) return; // a tap, not a scanner's Enter
          decide.ask(orderId, d[0]);
        });
        box.appendChild(b);
      });
      return box;
    },
    ask: function (orderId, decision) {
      decide.pending = { order_id: orderId, decision: decision };
      el('decide-text').textContent = t('sup_decide_confirm_' + decision, { order: orderId });
      el('decide-error').textContent = '';
      var ok = el('decide-confirm');
      ok.textContent = t('sup_decide_' + decision);
      ok.className = 'btn ' + (decision === 'ship' ? 'btn-ok' : 'btn-warn');
      ok.disabled = false;
      var dialog = el('decide-dialog');
      if (dialog.showModal) dialog.showModal(); else dialog.setAttribute('open', '');
    },
    close: function () {
      var dialog = el('decide-dialog');
      if (dialog.close) dialog.close(); else dialog.removeAttribute('open');
      decide.pending = null;
    },
    confirm: function () {
      var p = decide.pending;
      if (!p) return;
      el('decide-confirm').disabled = true;
      S.api('POST', '/api/v1/orders/' + encodeURIComponent(p.order_id) + '/decide',
            { decision: p.decision }, 15000).then(function (r) {
        if (r.ok) {
          decide.close();
          var row = document.querySelector('#sup-conflicts li[data-order-id="' + CSS.escape(p.order_id) + '"]');
          if (row) row.remove();
          var who = S.who();
          decide.result(t('sup_decide_done_' + p.decision, { order: p.order_id,
            name: who ? who.name : r.body.operator }), false);
          decide.soon();
          refresh();
          return;
        }
        var code = r.body && r.body.error;
        el('decide-error').textContent = code ? word('err_', code) : t('err_other', { status: r.status });
        el('decide-confirm').disabled = code === 'no_conflict' || code === 'cannot_decide';
        if (code === 'no_conflict') decide.soon();
      }, function () {
        el('decide-error').textContent = t('err_network');
        el('decide-confirm').disabled = false;
      });
    },
    result: function (text, bad) {
      var r = el('sup-decide-result');
      r.hidden = false;
      r.textContent = text;
      r.classList.toggle('bad', !!bad);
    }
  };
  el('decide-back').addEventListener('click', decide.close);
  el('decide-confirm').addEventListener('click', function (ev) {
    if (ev.detail === 0) return; // a tap, not a scanner's Enter
    decide.confirm();
  });
  el('decide-dialog').addEventListener('close', function () { decide.pending = null; });

  ['scan', 'alarm', 'alarm_ack', 'job', 'printer_alarm', 'freeze', 'unfreeze', 'conflict',
   'interception', 'state'].forEach(function (kind) { S.on(kind, function () { refresh(); }); });
  ['freeze', 'unfreeze', 'conflict'].forEach(function (kind) { S.on(kind, decide.soon); });
  S.on('status', function (st) { if (st.sync) renderSync(st.sync); });
  // while the page is hidden (another tab, the screen off) the hub is not asked
  document.addEventListener('visibilitychange', function () {
    if (document.hidden) clearTimeout(decide.timer); else decide.soon();
  });
  window.scanedgeDecide = decide; // for the browser tests and debugging on a device
  load();
  decide.load();
})();
