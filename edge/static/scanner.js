/* The keyboard-wedge scanner: one input that always has the focus; the scanner types the code
 * and Enter. Every scan gets a scan_id here and goes into a queue kept in localStorage, so:
 *  - a network error retries with the same scan_id (the edge answers a retry from what it
 *    stored: counted once, never twice), and a reload resumes the queue (nothing lost);
 *  - scans are sent one at a time, in the order they were made (packing counts depend on it);
 *  - while the alarm is up, scans are held (not sent) and go out after it is acknowledged, so a
 *    scan made in the middle of an alarm is judged with the operator aware of it, never dropped.
 * The success sound plays only when the edge's answer (sent after its commit) arrives. */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el;
  var station = S.config.station;
  var QUEUE_KEY = 'scanedge.queue.' + station;
  var HISTORY_KEY = 'scanedge.history.' + station;
  var input = el('scan-input');
  var queue = S.store(QUEUE_KEY) || [];
  var history = S.store(HISTORY_KEY) || [];
  var sending = false, retryTimer = null, backoff = 0, lastError = null;
  // Nothing is sent before the edge said which alarms are up (the stream's first "state"): a
  // scan held under an alarm must not go out on a reload before the alarm is known again.
  var ready = false;
  var listeners = [];

  function keepFocus() {
    var a = document.activeElement;
    var typing = a && a !== input && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA' ||
                                      a.tagName === 'SELECT' || a.isContentEditable);
    var dialog = document.querySelector('dialog[open]');
    if (!typing && !dialog) input.focus({ preventScroll: true });
  }
  input.addEventListener('blur', function () { setTimeout(keepFocus, 0); });
  document.addEventListener('click', function () { setTimeout(keepFocus, 0); });
  document.addEventListener('visibilitychange', function () { if (!document.hidden) keepFocus(); });
  window.addEventListener('focus', keepFocus);
  // Without a soft keyboard by default (the scanner types); the button brings it up for a person.
  el('kbd-toggle').addEventListener('click', function () {
    var on = input.getAttribute('inputmode') === 'none';
    input.setAttribute('inputmode', on ? 'text' : 'none');
    this.setAttribute('aria-pressed', on ? 'true' : 'false');
    input.blur(); input.focus();
  });
  // Enter (or the CR some scanners send) ends a code. Codes typed into other fields (the alarm's
  // operator name, a reprint reason) never reach here.
  input.addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter' || ev.keyCode === 13) {
      ev.preventDefault();
      var code = input.value.replace(/[\r\n]+$/, '');
      input.value = '';
      if (code.trim()) enqueue(code);
    }
  });

  function enqueue(code) {
    queue.push({ scan_id: S.newId(S.config.device_id), code: code, at: Date.now() });
    S.store(QUEUE_KEY, queue);
    S.record('scan_typed', code);
    pump();
  }

  function status() {
    var box = el('scan-status');
    var waiting = queue.length - (sending ? 1 : 0);
    var parts = [];
    if (lastError) parts.push(lastError);
    if (waiting > 0) parts.push(t('scan_queued', { n: waiting }));
    box.textContent = parts.join(' · ');
    box.classList.toggle('warn', !!lastError || (waiting > 0 && (S.alarm.isUp() || S.note.isUp())));
    S.alarm.setHeld(S.alarm.isUp() ? queue.length : 0);
  }

  function pump() {
    status();
    if (!ready || sending || !queue.length || S.alarm.isUp() || S.note.isUp() || retryTimer) return;
    sending = true;
    var item = queue[0];
    S.api('POST', '/api/v1/scans', {
      code: item.code, station: station, scan_id: item.scan_id
    }, 6000).then(function (r) {
      if (r.ok && r.body.verdict === 'alarm_pending') {
        // the edge holds the station's scans (an alarm another page or tab raised): keep this
        // one queued, bring the alarm up here; it goes out once a person acknowledged it
        S.api('GET', '/api/v1/alarms?station=' + encodeURIComponent(station)).then(function (a) {
          (a.body.alarms || []).forEach(function (x) { S.alarm.add(x); });
        });
      } else if (r.ok) {
        queue.shift(); S.store(QUEUE_KEY, queue);
        backoff = 0; lastError = null;
        S.edge.requestOk();
        done(item, r.body);
      } else if (r.status >= 500 || r.status === 429 || r.status === 408) {
        // not recorded (storage busy, disk full...): the same scan_id is tried again
        lastError = (r.body && r.body.message) || String(r.status);
        retry();
      } else {
        // the edge refused this request as such (bad code, bad station): it was not recorded
        queue.shift(); S.store(QUEUE_KEY, queue);
        lastError = null;
        refused(item, r.body);
      }
    }, function () {
      lastError = t('scan_retrying');
      retry();
    }).then(function () {
      sending = false;
      status();
      if (!retryTimer) pump();
    });
  }
  function retry() {
    backoff = Math.min(5000, backoff ? backoff * 2 : 300);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () { retryTimer = null; pump(); }, backoff);
  }
  S.on('alarms_cleared', function () { pump(); });
  S.on('notes_cleared', function () { pump(); });
  S.on('state', function () {
    ready = true;
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    pump();
  });

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
    queue: function () { return queue.slice(); },
    history: function () { return history.slice(); }
  };
  renderHistory();
  keepFocus();
  pump();
})();
