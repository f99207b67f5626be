/* The keyboard-wedge scanner of the scan and bench pages: one input that always has the focus
 * (S.wedge); the scanner types the code and Enter, and the code goes to POST /api/v1/scans through
 * the page's scan queue (S.scanQueue: a scan_id each, kept in localStorage, one at a time, held
 * while an alarm or a note is up, retried with the same scan_id, never lost, never counted twice).
 * The success sound plays only when the edge's answer (sent after its commit) arrives. */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el;
  var station = S.config.station;
  var HISTORY_KEY = 'scanedge.history.' + station;
  var history = S.store(HISTORY_KEY) || [];
  var listeners = [];

  var queue = S.scanQueue('scanedge.queue.' + station, function (item) {
    return S.api('POST', '/api/v1/scans', {
      code: item.code, station: station, scan_id: item.scan_id
    }, 6000).then(function (r) {
      if (r.ok && r.body.verdict === 'alarm_pending') {
        // the edge holds the station's scans (an alarm another page or tab raised): keep this
        // one queued, bring the alarm up here; it goes out once a person acknowledged it
        S.api('GET', '/api/v1/alarms?station=' + encodeURIComponent(station)).then(function (a) {
          (a.body.alarms || []).forEach(function (x) { S.alarm.add(x); });
        });
        return 'hold';
      }
      if (r.ok) { done(item, r.body); return 'done'; }
      // not recorded (storage busy, disk full...): the same scan_id is tried again
      if (r.status >= 500 || r.status === 429 || r.status === 408) {
        return { retry: (r.body && r.body.message) || String(r.status) };
      }
      // the edge refused this request as such (bad code, bad station): it was not recorded
      refused(item, r.body);
      return 'done';
    });
  });
  // Codes typed into other fields (a reprint reason, the sign-in) never reach here.
  S.wedge(el('scan-input'), el('kbd-toggle'), queue.push);

  function done(item, res) {
    var ok = res.verdict === 'ok';
    S.play(ok ? 'ok' : 'error'); // after the committed answer, never before
    if (!ok) S.vibrate([200, 80, 200]);
    if (res.verdict === 'frozen' && res.alarm_id) {
      S.alarm.add({ alarm_id: res.alarm_id, type: 'frozen_scan', level: 'alarm', order_id: res.order_id,
                    station: res.station, message: res.message, speak: res.message && res.message.zh,
                    active: true, created_at: new Date().toISOString() });
    }
    remember({ code: item.code, verdict: res.verdict, message: res.message, order_id: res.order_id,
               at: Date.now(), scan_id: item.scan_id });
    showVerdict(res.verdict, S.msg(res.message));
    if (res.order) S.renderOrder(res.order, res.seq, res.verdict === 'frozen');
    // the scan was recorded, not counted: read the note, then scan the item again
    if (res.verdict === 'note_pending' && res.note) S.note.show(res.note);
    listeners.forEach(function (fn) { fn(res, item); });
  }
  function refused(item, body) {
    S.play('error');
    var text = t('scan_bad_request', { message: (body && body.message) || '?' });
    remember({ code: item.code, verdict: 'refused', message: text, at: Date.now(), scan_id: item.scan_id });
    showVerdict('refused', text);
  }

  function showVerdict(verdict, text) {
    var box = el('verdict');
    box.className = box.className.replace(/\bverdict-(idle|ok|bad|pending)\b/g, '').trim() +
      (verdict === 'ok' ? ' verdict-ok' : ' verdict-bad');
    box.dataset.verdict = verdict;
    el('verdict-word').textContent = t('verdict_' + verdict) === 'verdict_' + verdict ? verdict : t('verdict_' + verdict);
    el('verdict-message').textContent = text;
  }

  function remember(entry) {
    history.unshift(entry);
    history = history.slice(0, 10);
    S.store(HISTORY_KEY, history);
    renderHistory();
  }
  function renderHistory() {
    var list = el('history');
    if (!list) return;
    list.textContent = '';
    history.forEach(function (h) {
      var li = S.make('li');
      var ok = h.verdict === 'ok';
      var word = t('verdict_' + h.verdict);
      li.appendChild(S.make('span', 'h-verdict ' + (ok ? 'h-ok' : 'h-bad'), word.indexOf('verdict_') === 0 ? h.verdict : word));
      li.appendChild(S.make('span', 'h-code', h.code + '  ' + S.clock(h.at)));
      li.appendChild(S.make('span', 'h-msg', typeof h.message === 'string' ? h.message : S.msg(h.message)));
      list.appendChild(li);
    });
    if (el('history-empty')) el('history-empty').hidden = history.length > 0;
  }

  window.ScanEdge.scanner = {
    onResult: function (fn) { listeners.push(fn); },
    queue: queue.items,
    history: function () { return history.slice(); }
  };
  renderHistory();
  queue.pump();
})();
