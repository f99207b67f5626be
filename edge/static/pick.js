/* The picker's PDA page: claim a wave, walk its stops (scan bin, item, tote), short, skip, and
 * the put-backs a freeze leaves. One scan input (a keyboard-wedge scanner types and Enter);
 * the edge decides what the scan is for the current step (docs/picking.md). */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el, make = S.make;
  var station = S.config.station;
  var input = el('scan-input');
  var wave = null, busy = false;

  S.wedge(input, el('kbd-toggle'), function (code) {
    queue.push(code.trim());
    pump();
  });

  /* Scans go out one at a time, in the order typed. While an alarm of this station is up they
   * are held, not lost, and go out after a person has tapped the alarm away (the bench's rule). */
  var queue = [];
  function pump() {
    S.alarm.setHeld(S.alarm.isUp() ? queue.length : 0);
    if (busy || !queue.length || S.alarm.isUp()) return;
    post('/api/v1/pick/scans', { code: queue.shift(), station: station });
  }
  S.on('alarms_cleared', pump);

  function say(answer) {
    var box = el('pick-verdict');
    box.className = 'verdict ' + (answer.verdict === 'ok' || answer.verdict === 'skipped' ? 'verdict-ok'
      : answer.alarm ? 'verdict-bad' : 'verdict-pending');
    box.dataset.verdict = answer.verdict || '';
    el('pick-message').textContent = S.msg(answer.message) || answer.message || '';
    if (answer.alarm) { S.play && S.play('alarm'); S.vibrate && S.vibrate([300, 100, 300]); }
    else if (answer.verdict === 'ok') { S.play && S.play('ok'); }
  }

  function post(path, body) {
    if (busy) return;
    busy = true;
    S.api('POST', path, body).then(function (r) {
      busy = false;
      if (r.body && r.body.verdict) say(r.body);
      else if (!r.ok) say({ verdict: r.body.error || 'error', message: r.body.message, alarm: false });
      if (r.body && r.body.wave !== undefined) render(r.body.wave);
      else refresh();
      pump();
    }, function () { busy = false; pump(); });
  }

  function refresh() {
    S.api('GET', '/api/v1/pick/current?station=' + encodeURIComponent(station)).then(function (r) {
      if (r.ok) render(r.body.wave);
    }, function () {});
  }

  function expectText(e) {
    if (!e) return '';
    if (e.step === 'bin') return t('pick_scan_bin', { location: e.location });
    if (e.step === 'item') return t('pick_scan_item');
    if (e.step === 'tote') return t('pick_scan_tote', { slot: e.slot });
    if (e.step === 'putback') return t('pick_putback', { location: e.location });
    return t('pick_done');
  }

  function render(w) {
    wave = w && w.state !== 'done' ? w : null;
    el('pick-idle').hidden = !!wave;
    el('pick-wave').hidden = !wave;
    if (w && w.state === 'done') el('pick-message').textContent = t('pick_done');
    if (!wave) return;
    el('pick-wave-id').textContent = t('pick_wave') + ' ' + wave.wave_id;
    el('pick-progress').textContent = t('pick_progress', { done: wave.progress.stops_done, total: wave.progress.stops });
    el('pick-remaining').textContent = t('pick_remaining', { m: Math.round(wave.remaining_m) });
    el('pick-expect').textContent = expectText(wave.expect);
    el('pick-expect').dataset.step = wave.expect.step;
    var s = wave.current;
    el('pick-stop').hidden = !s || wave.expect.step === 'putback';
    el('pick-stop').dataset.order = s ? s.order_id : '';
    if (s) {
      el('pick-location').textContent = s.location;
      el('pick-aisle').textContent = s.aisle;
      el('pick-bin').textContent = s.bin;
      el('pick-level').textContent = s.level;
      el('pick-box').textContent = s.location;
      el('pick-name').textContent = s.name || s.sku;
      el('pick-desc').textContent = s.description;
      el('pick-qty').textContent = s.picked + '/' + s.qty;
      el('pick-slot').textContent = s.slot;
      el('pick-tote').textContent = s.tote ? '(' + s.tote + ')' : '';
      el('pick-found').value = s.picked;
    }
    var list = el('pick-putbacks');
    list.textContent = '';
    (wave.putbacks || []).forEach(function (p) {
      var li = make('li', 'pick-putback', (p.name || p.sku) + ' ×' + p.qty + ' · ' +
        t('pick_slot') + ' ' + p.slot + (p.tote ? ' ' + p.tote : '') + ' → ' + p.location);
      li.dataset.order = p.order_id;
      li.dataset.location = p.location;
      list.appendChild(li);
    });
    el('pick-putback-box').hidden = !(wave.putbacks || []).length;
  }

  el('pick-claim').addEventListener('click', function () { post('/api/v1/pick/claim', { station: station }); });
  el('pick-skip').addEventListener('click', function () {
    if (wave && wave.current) post('/api/v1/pick/skip', { station: station, stop_no: wave.current.stop_no });
  });
  el('pick-short').addEventListener('click', function () {
    el('pick-short-form').hidden = false;
    el('pick-found').focus();
  });
  el('pick-short-cancel').addEventListener('click', function () { el('pick-short-form').hidden = true; });
  el('pick-short-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    el('pick-short-form').hidden = true;
    if (!wave || !wave.current) return;
    post('/api/v1/pick/short', { station: station, stop_no: wave.current.stop_no,
      found: parseInt(el('pick-found').value, 10) || 0, reason: el('pick-reason').value });
  });
  // a freeze (alarm at this station), another device's change: show the wave as it is now
  S.on('alarm', refresh);
  S.on('freeze', refresh);
  S.on('state', refresh);
  S.on('alarm_ack', refresh);
  refresh();
})();
