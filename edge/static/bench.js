/* The packing bench: the open order (lines tick off as items are scanned, here or on a PDA of
 * this station), the label preview, print / reprint (with a reason), printer status. */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el;
  var order = null, jobs = {}, previewFor = null;
  // the last print refusal of the open order: the scale's weight is judged when the label is
  // asked for, so only then does the gate say weight_off / weight_missing (docs/scale.md)
  var refusal = null;

  function lastJob() {
    var list = Object.keys(jobs).map(function (k) { return jobs[k]; })
      .filter(function (j) { return order && j.order_id === order.order_id; })
      .sort(function (a, b) { return a.created_at < b.created_at ? -1 : 1; });
    return list[list.length - 1] || null;
  }
  function frozen() { return !!(order && order.freeze) || !el('order-frozen').hidden; }

  /* The print gate, as the edge judged it for this station: all packed, gifts confirmed,
   * packed here. The button says why it is disabled; a supervisor may override (with a reason). */
  function gate() { return order && order.print_gate ? order.print_gate : { allowed: true, problems: [] }; }
  function refused() { return refusal && order && refusal.order_id === order.order_id ? refusal.problems : []; }
  function renderButtons() {
    var last = lastJob(), g = gate(), who = S.who();
    // a weight refusal leaves the button enabled: the packer fixes the parcel and asks again
    // the pack video or photo that evidence_policy still asks for (evidence.js)
    var evidence = S.evidence ? S.evidence.missing() : [];
    var problems = (g.allowed ? refused() : (g.problems || [])).concat(evidence);
    // an order split into parcels prints each parcel's label from the parcels card (parcels.js)
    if (order && order.parcels) problems = problems.concat([t('err_order_split')]);
    var why = problems.map(function (p) { return S.msg(p); }).join(' · ');
    // no print while an alarm of this station waits for a person
    el('print-btn').disabled = !order || frozen() || !g.allowed || evidence.length > 0 || S.alarm.isUp() ||
      !!order.parcels;
    el('print-why').hidden = !order || !problems.length || !why;
    el('print-why').textContent = why;
    el('override-btn').hidden = !order || !problems.length || frozen() || !who || !!order.parcels ||
      ['supervisor', 'admin'].indexOf(who.role) < 0;
    el('reprint-btn').disabled = !order || frozen() || !last || last.state === 'queued' || last.state === 'sending';
    // the carrier's waybill: the same gate as our label (the edge checks it again)
    el('ewaybill-btn').disabled = !order || frozen() || !g.allowed || evidence.length > 0 ||
      S.alarm.isUp() || fetchingWaybill || !!order.parcels;  // a split order: no 子母件 waybill yet
  }

  function renderJobs() {
    var list = el('jobs');
    list.textContent = '';
    var mine = Object.keys(jobs).map(function (k) { return jobs[k]; })
      .filter(function (j) { return order && j.order_id === order.order_id; })
      .sort(function (a, b) { return a.created_at < b.created_at ? 1 : -1; });
    mine.forEach(function (j) {
      var li = S.make('li');
      li.dataset.jobId = j.job_id;
      li.dataset.state = j.state;
      var word = t('job_' + j.state);
      li.appendChild(S.make('span', 'job-state job-' + j.state, word.indexOf('job_') === 0 ? j.state : word));
      var text = ' ' + (j.kind === 'ewaybill' ? t('ewaybill_job') + ' ' : '') + j.order_id +
                 (j.reprint_no ? ' · ' + t('reprint') + ' #' + j.reprint_no : '') +
                 ' · ' + S.clock(j.printed_at || j.updated_at || j.created_at);
      if (j.reason) text += ' · ' + j.reason;
      if (j.last_error && j.state !== 'printed') text += ' · ' + j.last_error;
      li.appendChild(S.make('span', null, text));
      if (j.state === 'needs_confirmation') {
        [['printed', 'job_confirm_printed'], ['resend', 'job_confirm_resend'], ['cancel', 'cancel']]
          .forEach(function (o) {
            var b = S.make('button', 'btn btn-small', t(o[1]));
            b.type = 'button';
            b.addEventListener('click', function () { confirmJob(j.job_id, o[0]); });
            li.appendChild(b);
          });
      }
      list.appendChild(li);
    });
    el('jobs-empty').hidden = mine.length > 0;
    renderButtons();
  }

  function addJob(j) {
    if (!j || !j.job_id) return;
    var old = jobs[j.job_id];
    if (old && old.updated_at > j.updated_at) return;
    jobs[j.job_id] = j;
    renderJobs();
  }

  function preview() {
    var img = el('label-preview');
    if (!order) { img.hidden = true; previewFor = null; return; }
    var key = order.order_id + ':' + order.version;
    if (previewFor === key) return;
    previewFor = key;
    img.onload = function () { img.hidden = false; };
    img.onerror = function () { img.hidden = true; };
    img.src = '/api/v1/label-preview/' + encodeURIComponent(order.order_id) + '?v=' + order.version;
  }

  S.on('order', function (o) {
    var changed = !order || !o || order.order_id !== o.order_id;
    order = o;
    if (o && o.jobs) o.jobs.forEach(function (j) { jobs[j.job_id] = j; });
    if (changed) {
      el('print-status').textContent = ''; el('ewaybill-status').textContent = '';
      refusal = null;
      pollScale();
    }
    renderJobs();
    preview();
  });
  S.on('job', function (j) { addJob(j); });
  S.on('who', function () { renderButtons(); });
  S.on('evidence', function () { renderButtons(); });
  S.on('alarm_up', function () { renderButtons(); });
  S.on('alarms_cleared', function () { renderButtons(); });
  el('override-btn').addEventListener('click', function () {
    if (!order) return;
    var reason = window.prompt(t('print_override_reason'));
    if (!reason || !reason.trim()) return;
    S.api('POST', '/api/v1/print-jobs', { order_id: order.order_id, override: { reason: reason.trim() } })
      .then(function (r) {
        el('print-status').textContent = r.status === 202 ? t('print_sent')
          : t('print_failed', { message: r.body.message || r.status });
        if (r.status === 202) {
          refusal = null;
          renderButtons();
          S.api('GET', '/api/v1/print-jobs/' + r.body.job_id).then(function (g) { if (g.ok) addJob(g.body); });
        }
      });
  });

  // --- printing -------------------------------------------------------------------------------
  var printing = false;
  el('print-btn').addEventListener('click', function () {
    if (!order || printing || S.alarm.isUp()) return;
    printing = true;
    var id = order.order_id;
    // one key per order and station: a double tap or a retry after a network error is one label;
    // another label for the same order is a reprint, which needs a reason
    var key = 'bench:' + S.config.station + ':' + id;
    send(0);
    function send(attempt) {
      S.api('POST', '/api/v1/print-jobs', { order_id: id, idempotency_key: key }).then(function (r) {
        printing = false;
        if (r.status === 202) {
          refusal = null;
          el('print-status').textContent = t('print_sent');
          S.api('GET', '/api/v1/print-jobs/' + r.body.job_id).then(function (g) { if (g.ok) addJob(g.body); });
        } else {
          var words = (r.body.problems || []).map(function (p) { return S.msg(p); }).join(' · ');
          if (r.body.error === 'not_ready') refusal = { order_id: id, problems: r.body.problems || [] };
          el('print-status').textContent = t('print_failed', { message: words || r.body.message || r.status });
          S.play('error');
        }
        renderButtons();
      }, function () {
        if (attempt < 5) { setTimeout(function () { send(attempt + 1); }, 500 * (attempt + 1)); return; }
        printing = false;
        el('print-status').textContent = t('print_failed', { message: t('conn_edge_down') });
      });
    }
  });

  var dialog = el('reprint-dialog');
  el('reprint-btn').addEventListener('click', function () {
    el('reprint-who').textContent = S.operator() ? t('ack_by', { name: S.operator() }) : '';
    el('reprint-error').textContent = '';
    if (dialog.showModal) dialog.showModal(); else dialog.setAttribute('open', '');
  });
  el('reprint-cancel').addEventListener('click', function () { dialog.close(); });
  el('reprint-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var picked = dialog.querySelector('input[name=reason]:checked');
    var other = el('reprint-other').value.trim();
    var reason = picked ? picked.value : '';
    if (other) reason = reason ? reason + ': ' + other : other;
    var last = lastJob();
    if (!reason || !last) {
      el('reprint-error').textContent = t('reprint_reason');
      return;
    }
    // who reprinted is the signed-in person (the edge takes it from the session)
    S.api('POST', '/api/v1/print-jobs/' + last.job_id + '/reprint', { reason: reason })
      .then(function (r) {
        if (r.status === 202) {
          dialog.close();
          el('print-status').textContent = t('print_sent');
          S.api('GET', '/api/v1/print-jobs/' + r.body.job_id).then(function (g) { if (g.ok) addJob(g.body); });
        } else {
          el('reprint-error').textContent = t('print_failed', { message: r.body.message || r.status });
        }
      }, function () { el('reprint-error').textContent = t('conn_edge_down'); });
  });

  function confirmJob(jobId, outcome) {
    S.api('POST', '/api/v1/print-jobs/' + jobId + '/confirm', { outcome: outcome })
      .then(function (r) { if (r.ok) addJob(r.body); });
  }

  // --- the carrier's e-waybill (打印面单) ---------------------------------------------------------
  /* One tap: the edge asks the hub for the carrier's number (or takes one from its offline pool),
   * queues the carrier's layout on this printer and makes the number the order's tracking number.
   * The edge keeps one waybill per order, so a retry after a network error gets the same number
   * and the same print job, never a second label. */
  var LAYOUT_CARRIERS = ['SF', 'ZTO', 'JT'];
  var fetchingWaybill = false;
  function ewaybillError(r) {
    var b = r.body || {};
    if (b.error === 'ewaybill_gate') {
      return (b.problems || []).map(function (p) { return S.msg(p); }).join(' · ') || b.message;
    }
    if (b.error === 'hub_unreachable') return t('ewaybill_waiting_hub');
    if (b.error === 'carrier_refused') return t('ewaybill_carrier_refused', { message: b.message || r.status });
    if (b.error === 'paper_too_narrow') return t('ewaybill_paper_too_narrow');
    return t('ewaybill_failed', { message: b.message || r.status });
  }
  el('ewaybill-btn').addEventListener('click', function () {
    if (!order || fetchingWaybill || S.alarm.isUp()) return;
    fetchingWaybill = true;
    renderButtons();
    var id = order.order_id, status = el('ewaybill-status');
    // the order's own carrier when we have its layout; else the hub's choice for the site
    var body = LAYOUT_CARRIERS.indexOf(order.carrier) >= 0 ? { carrier: order.carrier } : {};
    status.textContent = t('ewaybill_asking');
    status.dataset.state = 'asking';
    send(0);
    function done(state, text) {
      fetchingWaybill = false;
      status.textContent = text;
      status.dataset.state = state;
      renderButtons();
    }
    function send(attempt) {
      S.api('POST', '/api/v1/orders/' + encodeURIComponent(id) + '/ewaybill', body).then(function (r) {
        if (!r.ok) {
          done(r.body && r.body.error || 'failed', ewaybillError(r));
          S.play('error');
          return;
        }
        var w = r.body.ewaybill || {}, words = { carrier: w.carrier, number: w.number };
        status.dataset.number = w.number || '';
        if (r.body.job) {
          done('printing', t(r.body.source === 'pool' ? 'ewaybill_sent_pool' : 'ewaybill_sent', words));
          S.api('GET', '/api/v1/print-jobs/' + r.body.job).then(function (g) { if (g.ok) addJob(g.body); });
        } else {
          done('not_printed', t('ewaybill_not_printed', words));
        }
      }, function () {
        if (attempt < 5) { setTimeout(function () { send(attempt + 1); }, 500 * (attempt + 1)); return; }
        done('failed', t('ewaybill_failed', { message: t('conn_edge_down') }));
      });
    }
  });

  // --- printer status -------------------------------------------------------------------------
  function renderPrinter(p) {
    if (!p) return;
    var state = el('printer-state');
    var fault = p.hold, warning = p.warning;
    var key = fault ? 'printer_' + fault : warning ? 'printer_' + warning : 'printer_ok';
    var word = t(key);
    state.textContent = word === key ? (fault || warning) : word;
    state.className = 'printer-state ' + (fault ? 'bad' : warning ? 'warn' : 'ok');
    el('paper-out').hidden = fault !== 'paper_out';
    var q = p.queue || {};
    var waiting = (q.queued || 0) + (q.sending || 0);
    el('printer-queue').textContent = t('printer_queue', { n: waiting }) + ' · ' + (p.printer || '');
  }
  var printerTimer = null;
  function refreshPrinter() {
    clearTimeout(printerTimer);
    printerTimer = setTimeout(function () {
      S.api('GET', '/api/v1/printer').then(function (r) { if (r.ok) renderPrinter(r.body); }, function () {});
    }, 150);
  }
  S.on('state', function (s) { renderPrinter(s.printer); });
  S.on('status', function (s) { renderPrinter(s.printer); });
  S.on('printer_alarm', refreshPrinter);
  S.on('job', refreshPrinter);
  S.on('scan', function (r) { if (r.verdict === 'frozen') renderButtons(); });

  // --- the scale (docs/scale.md): what the parcel weighs against what it should ----------------
  var scaleTimer = null, scaleOff = false;
  function kg(v) { return typeof v === 'number' ? v.toFixed(3) + ' kg' : '—'; }
  function renderScale(s) {
    var card = el('weight-card');
    if (!s.configured) { card.hidden = true; scaleOff = true; return; }
    card.hidden = false;
    var moving = s.state === 'unstable' && typeof s.live_kg === 'number';
    el('weight-measured').textContent = typeof s.weight_kg === 'number' ? kg(s.weight_kg)
      : moving ? kg(s.live_kg) + ' · ' + t('weight_moving')
      : s.state === 'unstable' ? t('weight_moving') : t('weight_state_' + s.state);
    var c = s.check;
    el('weight-expected').textContent = !order ? '—' : typeof s.expected_kg === 'number'
      ? kg(s.expected_kg) + (c && typeof c.allowed_kg === 'number' ? ' ±' + kg(c.allowed_kg) : '')
      : t('weight_no_expected');
    var words = el('weight-check');
    words.textContent = c && typeof s.weight_kg === 'number' ? S.msg(c) : '';
    words.dataset.passes = c ? String(c.passes) : '';
    words.dataset.verdict = c ? c.verdict : '';
  }
  function pollScale() {
    clearTimeout(scaleTimer);
    if (scaleOff) return;
    var asked = order ? order.order_id : null;
    var q = asked ? '?order_id=' + encodeURIComponent(asked) : '';
    S.api('GET', '/api/v1/scale' + q).then(function (r) {
      if (r.ok && asked === (order ? order.order_id : null)) renderScale(r.body);
    }, function () {}).then(function () {
      if (!scaleOff) scaleTimer = setTimeout(pollScale, document.hidden ? 3000 : 500);
    });
  }
  pollScale();
})();
