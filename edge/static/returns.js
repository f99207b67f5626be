/* The returns bench (退货入库, docs/returns.md): one scan of the parcel (return waybill, RMA number or
 * original order) shows what should come back and starts the receipt; item scans tick its lines
 * and flag what is not on the RMA; photos from the camera (getUserMedia) or a file; a condition
 * per line; "finish" shows the device's verdict and follows the returns label to the printer.
 *
 * Scans go through the scan page's queue (S.scanQueue: a scan_id each, kept in localStorage, one
 * at a time, in order, held while an alarm or a note of this station is up): a network error
 * retries with the same scan_id (the edge counts a replayed item scan once), and a reload resumes
 * the queue and the receipt that was on the bench. Every word is from the catalogue: the edge's
 * errors are shown by their code (err_<code>), never by its English message. */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el, make = S.make;
  var station = S.config.station;
  var KEY = 'scanedge.returns.' + station;
  var API = '/api/v1/returns';
  var CONDITIONS = ['resaleable', 'damaged', 'used', 'missing_parts'];
  var saved = S.store(KEY) || {};
  var history = saved.history || [];    // the last 10 scans: {code, kind, text, at}
  var receipt = null;                   // the receipt on the bench (open, or finished just now)
  var rma = null;                       // its RMA (null for an unannounced return)
  var unknownCode = null;               // a scan that named no RMA: offered as unannounced
  var labelJob = null;                  // the returns label's print job, followed to "printed"
  var shots = {};                       // sha256 -> object URL of a photo taken on this page
  var resumed = false;                  // the receipt on the bench before a reload is known again
  // The scan field takes the focus back at once when the button just tapped hides itself (next,
  // finish, unannounced): the scanner's next code must not land on a hidden button.
  var focusScan = function () {};

  function save() {
    S.store(KEY, { history: history, receipt_id: receipt ? receipt.receipt_id : null });
  }
  function enc(s) { return encodeURIComponent(s); }
  var word = S.word, errorText = S.errorText, retryable = S.retryable;

  // --- what the person sees at once: the verdict box, the sounds, the history ----------------

  var panel = S.verdictPanel('ret', function (kind) { return t('ret_word_' + kind); }, history, function () { save(); });
  var say = panel.say, remember = panel.remember, renderHistory = panel.render;
  /* Something is wrong with the parcel: a low tone, a buzz and a red flash, like the alarms. */
  function alert(flag) {
    S.record('returns_flag', flag);
    panel.alarm();
  }

  // --- the receipt on the bench ---------------------------------------------------------------

  function clearBench() {
    receipt = null; rma = null; unknownCode = null; labelJob = null;
    ['ret-unknown', 'ret-first', 'ret-rma', 'ret-photos', 'ret-actions', 'ret-result'].forEach(function (id) {
      el(id).hidden = true;
    });
    el('ret-thumbs').textContent = '';
    el('ret-photo-status').textContent = '';
    Object.keys(shots).forEach(function (sha) { URL.revokeObjectURL(shots[sha]); });
    shots = {};
    camera.close();
    save();
  }

  function fact(dl, label, value, cls) {
    if (value === undefined || value === null || value === '') return;
    dl.appendChild(make('dt', null, label));
    dl.appendChild(make('dd', cls || null, value));
  }
  function deadlineText(iso) {
    return S.clock(iso) + (Date.parse(iso) < Date.now() ? ' ' + t('ret_past_deadline') : '');
  }

  function renderRma() {
    var r = rma, rc = receipt;
    el('ret-rma').hidden = !r && !rc;
    if (!r && !rc) return;
    el('ret-rma-title').textContent = r ? t('ret_rma') : t('ret_unannounced');
    el('ret-rma-id').textContent = r ? r.rma_id : rc.receipt_id;
    el('ret-cancelled').hidden = !(r && r.status === 'cancelled');
    el('ret-is-unannounced').hidden = !(rc && rc.unannounced);
    el('ret-is-finished').hidden = !(rc && rc.state === 'finished');
    var dl = el('ret-facts');
    dl.textContent = '';
    if (r) {
      fact(dl, t('ret_order'), r.order_id);
      fact(dl, t('ret_reason'), word('ret_rma_reason_', r.reason));
      fact(dl, t('ret_deadline'), deadlineText(r.deadline),
           Date.parse(r.deadline) < Date.now() ? 'bad' : null);
      fact(dl, t('ret_tracking'), r.return_tracking);
      var marks = [];
      if (r.custom_work) marks.push(t('ret_custom_work'));
      if (r.invoiced) marks.push(t('ret_invoiced'));
      fact(dl, t('ret_marks'), marks.join(' · '), r.custom_work ? 'bad' : null);
    } else if (rc && rc.code) {
      fact(dl, t('ret_scanned'), rc.code);
    }
    if (rc) fact(dl, t('ret_started'), S.clock(rc.started_at) + (rc.operator ? ' · ' + rc.operator : ''));
    renderLines();
  }

  /* The condition of a line (or of an item not on the RMA: its code), sent as it is chosen. */
  function conditionSelect(key, name, condition, open, needed) {
    var label = make('label', 'ret-condition');
    label.appendChild(make('span', 'sr-only', t('ret_condition') + ' ' + name));
    var select = make('select', 'ret-condition-select');
    select.dataset.sku = key;
    var none = make('option', null, t('ret_condition_choose'));
    none.value = '';
    select.appendChild(none);
    CONDITIONS.forEach(function (c) {
      var o = make('option', null, t('ret_condition_' + c));
      o.value = c;
      select.appendChild(o);
    });
    select.value = condition || '';
    select.disabled = !open;
    select.classList.toggle('ret-needs', open && needed);
    select.addEventListener('change', function () { setCondition(key, select); });
    label.appendChild(select);
    return label;
  }

  /* The lines: expected from the RMA, received and condition from the receipt. */
  function renderLines() {
    var list = el('ret-lines');
    list.textContent = '';
    var lines = receipt ? receipt.lines
      : (rma ? rma.lines.map(function (l) { return { sku: l.sku, name: l.name, expected: l.qty, received: 0, condition: null }; }) : []);
    var open = receipt && receipt.state === 'open' && !(rma && rma.status === 'cancelled');
    lines.forEach(function (line) {
      var full = line.received >= line.expected && line.expected > 0;
      var li = make('li', 'line ret-line' + (line.received > line.expected ? ' ret-over' : full ? ' line-done' : ''));
      li.dataset.sku = line.sku;
      li.appendChild(make('span', 'line-name', line.name || line.sku));
      li.appendChild(make('span', 'line-meta', line.sku));
      var count = make('span', 'line-count', line.received + '/' + line.expected);
      count.setAttribute('aria-label', t('ret_received') + ' ' + line.received + ' / ' + t('qty') + ' ' + line.expected);
      li.appendChild(count);
      if (receipt) {
        li.appendChild(conditionSelect(line.sku, line.name || line.sku, line.condition, open,
                                       line.received > 0 && !line.condition));
      }
      list.appendChild(li);
    });
    var extras = receipt ? receipt.extras : [];
    el('ret-extras-box').hidden = !extras.length;
    el('ret-extras-box').classList.toggle('ret-extras-neutral', !!(receipt && receipt.unannounced));
    var ul = el('ret-extras');
    ul.textContent = '';
    extras.forEach(function (x) {
      var li = make('li', 'ret-extra');
      li.dataset.code = x.code;
      li.appendChild(make('span', 'ret-extra-code', x.code + ' × ' + x.qty));
      if (receipt) li.appendChild(conditionSelect(x.code, x.code, x.condition, open, false));
      ul.appendChild(li);
    });
  }

  function renderPhotos() {
    var rc = receipt;
    el('ret-photos').hidden = !rc;
    if (!rc) return;
    var open = rc.state === 'open';
    el('ret-camera-open').hidden = !open || !camera.available() || camera.on();
    document.querySelector('label[for=ret-file]').hidden = !open;
    el('ret-photo-count').textContent = rc.photos.length;
    var list = el('ret-thumbs');
    list.textContent = '';
    rc.photos.forEach(function (p) {
      var li = make('li', 'ret-thumb');
      li.dataset.sha256 = p.sha256;
      if (shots[p.sha256]) {
        var img = make('img');
        img.src = shots[p.sha256];
        img.alt = t('ret_photo') + ' ' + p.sha256.slice(0, 8);
        li.appendChild(img);
      }
      li.appendChild(make('span', 'ret-sha', p.sha256.slice(0, 8) + ' · ' + Math.round(p.bytes / 1024) + ' KB'));
      list.appendChild(li);
    });
  }

  /* What still keeps "finish" disabled, in words. */
  function missing() {
    var rc = receipt, why = [];
    if (!rc || rc.state !== 'open') return why;
    if (rma && rma.status === 'cancelled') { why.push(t('ret_why_cancelled')); return why; }
    if (!rc.photos.length) why.push(t('ret_why_photo'));
    var undecided = rc.lines.filter(function (l) { return l.received > 0 && !l.condition; });
    if (undecided.length) why.push(t('ret_why_condition', { n: undecided.length }));
    if (!rc.unannounced && !rc.lines.some(function (l) { return l.received > 0; }) && !rc.extras.length) {
      why.push(t('ret_why_items'));
    }
    return why;
  }
  function renderActions() {
    var rc = receipt;
    el('ret-actions').hidden = !rc && !rma && !unknownCode;
    var open = rc && rc.state === 'open';
    el('ret-finish').hidden = !open;
    var why = missing();
    el('ret-finish').disabled = !open || why.length > 0 || S.alarm.isUp() || finishing;
    el('ret-finish-why').hidden = !open || !why.length;
    el('ret-finish-why').textContent = why.join(' · ');
  }

  function setReceipt(rc) {
    receipt = rc;
    save();
    renderRma();
    renderPhotos();
    renderActions();
    if (rc && rc.state === 'finished' && rc.verdict) renderVerdict(rc.verdict, null);
  }

  // --- scans: the parcel first, then its items -------------------------------------------------

  /* One queue for the parcel's scan and its items, in the order scanned: the parcel's code is
   * looked up while no receipt is open, every later code is an item of the open one. */
  var queue = S.scanQueue('scanedge.returns.queue.' + station, function (item) {
    return receipt && receipt.state === 'open' ? scanItem(item) : lookup(item);
  }, { canSend: function () { return resumed; }, after: function () { renderActions(); } });

  /* The parcel's code: the RMA it names, then its receipt (started here, or the open one). */
  function lookup(item) {
    return S.api('GET', API + '/lookup?code=' + enc(item.code), undefined, 6000).then(function (r) {
      if (retryable(r)) return { retry: errorText(r) };
      if (r.status === 404 && r.body.error === 'rma_unknown') {
        clearBench();
        unknownCode = item.code;
        el('ret-unknown').hidden = false;
        el('ret-unknown-text').textContent = t('ret_unknown', { code: item.code });
        el('ret-unannounced').disabled = false;
        renderActions();
        say('bad', t('ret_unknown', { code: item.code }), 'unknown');
        remember(item.code, 'unknown', t('ret_unknown_short'));
        S.play('error');
        return 'done';
      }
      if (!r.ok) { refused(item, r); return 'done'; }
      clearBench();
      window.scrollTo(0, 0); // a new parcel: its RMA from the top
      rma = r.body.rma;
      renderRma();
      renderActions();
      return start({ rma_id: rma.rma_id, station: station }, item);
    });
  }
  function start(body, item) {
    return S.api('POST', API + '/receipts', body, 6000).then(function (r) {
      if (retryable(r)) return { retry: errorText(r) };
      if (r.ok) {
        setReceipt(r.body);
        var resumedOne = r.status === 200;
        var text = t(rma ? (resumedOne ? 'ret_resumed' : 'ret_opened') : 'ret_unannounced_opened',
                     { rma: rma ? rma.rma_id : '', n: totalExpected() });
        say('ok', text, 'ok');
        remember(item.code, 'ok', text);
        S.play('ok');
        return 'done';
      }
      if (r.body.error === 'rma_already_received') { alreadyReceived(item, r.body.receipt); return 'done'; }
      if (r.body.error === 'rma_frozen') { frozen(item); return 'done'; }
      refused(item, r);
      return 'done';
    });
  }
  function totalExpected() {
    return rma ? rma.lines.reduce(function (n, l) { return n + l.qty; }, 0) : 0;
  }

  /* An item out of the parcel, counted on the open receipt. */
  function scanItem(item) {
    var id = receipt.receipt_id;
    return S.api('POST', API + '/receipts/' + enc(id) + '/items',
                 { code: item.code, scan_id: item.scan_id }, 6000).then(function (r) {
      if (retryable(r)) return { retry: errorText(r) };
      if (!r.ok) {
        if (r.body.error === 'rma_frozen') frozen(item);
        else if (r.body.error === 'receipt_finished') { reload(id); refused(item, r); }
        else refused(item, r);
        return 'done';
      }
      setReceipt(r.body.receipt);
      var flag = r.body.flag, m = r.body.matched;
      var line = m && receipt.lines.filter(function (l) { return l.sku === m.sku; })[0];
      if (flag && !receipt.unannounced) {
        var text = t('ret_flag_' + flag, { code: item.code, name: line ? (line.name || line.sku) : item.code });
        say('bad', text, flag);
        remember(item.code, flag, text);
        alert(flag);
      } else {
        var ok = line ? t('ret_item_ok', { name: line.name || line.sku, received: line.received, expected: line.expected })
                      : t('ret_item_recorded', { code: item.code });
        say('ok', ok, 'ok');
        remember(item.code, 'ok', ok);
        S.play('ok');
      }
      return 'done';
    });
  }

  function refused(item, r) {
    var text = r.body && r.body.problem ? t('ret_bad_code', { code: item.code }) : errorText(r);
    say('bad', text, 'refused');
    remember(item.code, 'refused', text);
    S.play('error');
  }

  /* Cancelled upstream: a freeze. The edge raised the station's alarm; bring it up here now
   * rather than waiting for the stream, and show the RMA as cancelled. */
  function frozen(item) {
    if (rma) rma.status = 'cancelled';
    var text = t('ret_frozen', { rma: rma ? rma.rma_id : item.code });
    say('bad', text, 'frozen');
    remember(item.code, 'frozen', text);
    renderRma();
    renderActions();
    alert('rma_frozen');
    S.api('GET', '/api/v1/alarms?station=' + enc(station)).then(function (a) {
      ((a.body && a.body.alarms) || []).forEach(function (x) { S.alarm.add(x); });
    }, function () {});
  }

  /* The same RMA received before: refused, and the first receipt shown in its place. */
  function alreadyReceived(item, first) {
    var text = t('ret_already', { rma: rma ? rma.rma_id : item.code });
    say('bad', text, 'already');
    remember(item.code, 'already', text);
    alert('rma_already_received');
    el('ret-first').hidden = !first;
    if (!first) return;
    setReceipt(first); // its lines, photos and verdict in place of a new receipt
    var dl = el('ret-first-facts');
    dl.textContent = '';
    fact(dl, t('ret_started'), S.clock(first.started_at));
    fact(dl, t('station'), first.station);
    fact(dl, t('operator'), first.operator);
    if (first.verdict) {
      fact(dl, t('ret_outcome'), t(first.verdict.qualifies ? 'ret_qualifies' : 'ret_not_qualifies'),
           first.verdict.qualifies ? 'ok' : 'bad');
      fact(dl, t('ret_decided'), S.clock(first.verdict.decided_at));
      fact(dl, t('ret_photos'), String(first.photos.length));
    }
  }

  el('ret-unannounced').addEventListener('click', function () {
    var code = unknownCode;
    if (!code || S.alarm.isUp()) return;
    this.disabled = true;  // one tap, one record: a second tap must not open a second receipt
    S.api('POST', API + '/receipts', { unannounced: true, code: code, station: station }).then(function (r) {
      if (!r.ok) { refused({ code: code }, r); el('ret-unannounced').disabled = false; return; }
      el('ret-unknown').hidden = true;
      focusScan();
      unknownCode = null;
      rma = null;
      setReceipt(r.body);
      var text = t('ret_unannounced_opened');
      say('ok', text, 'ok');
      remember(code, 'ok', text);
    }, function () {
      el('ret-unannounced').disabled = false;
      say('bad', t('err_network'), 'refused');
    });
  });

  // --- condition per line ---------------------------------------------------------------------

  function setCondition(sku, select) {
    if (!receipt) return;
    var before = (receipt.lines.concat(receipt.extras).filter(function (l) {
      return (l.sku || l.code) === sku;
    })[0] || {}).condition || '';
    select.disabled = true;
    S.api('PUT', API + '/receipts/' + enc(receipt.receipt_id) + '/lines/' + enc(sku),
          { condition: select.value || null }).then(function (r) {
      if (r.ok) { setReceipt(r.body); return; }
      select.value = before;
      select.disabled = false;
      say('bad', errorText(r), 'refused');
      S.play('error');
      if (r.body.error === 'rma_frozen') frozen({ code: rma ? rma.rma_id : sku });
    }, function () {
      select.value = before;
      select.disabled = false;
      say('bad', t('err_network'), 'refused');
    }).then(function () { el('scan-input').focus({ preventScroll: true }); });
  }

  // --- photos: the camera in the page, or a file ----------------------------------------------

  var camera = {
    stream: null,
    // only a secure origin (https, or http://127.0.0.1 / localhost) gets getUserMedia
    available: function () { return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia); },
    on: function () { return !!this.stream; },
    open: function () {
      var self = this;
      el('ret-photo-status').textContent = t('ret_camera_starting');
      return navigator.mediaDevices.getUserMedia({
        video: { facingMode: 'environment', width: { ideal: 1600 }, height: { ideal: 1200 } }, audio: false
      }).then(function (stream) {
        self.stream = stream;
        var v = el('ret-video');
        v.srcObject = stream;
        el('ret-camera').hidden = false;
        el('ret-photo-status').textContent = '';
        renderPhotos();
        return v.play ? v.play().catch(function () {}) : null;
      }, function (e) {
        el('ret-photo-status').textContent = t('ret_camera_failed', { message: (e && e.name) || e });
        S.record('camera_failed', (e && e.name) || String(e));
      });
    },
    close: function () {
      if (this.stream) this.stream.getTracks().forEach(function (tr) { tr.stop(); });
      this.stream = null;
      el('ret-video').srcObject = null;
      el('ret-camera').hidden = true;
      if (receipt) renderPhotos();
    },
    /* A still of the video at its own size, as a JPEG. */
    shoot: function () {
      var v = el('ret-video');
      if (!v.videoWidth) return Promise.reject(new Error('no frame yet'));
      var c = document.createElement('canvas');
      c.width = v.videoWidth;
      c.height = v.videoHeight;
      c.getContext('2d').drawImage(v, 0, 0, c.width, c.height);
      return new Promise(function (resolve, reject) {
        c.toBlob(function (b) { if (b) resolve(b); else reject(new Error('no image')); }, 'image/jpeg', 0.88);
      });
    }
  };
  el('ret-camera-open').addEventListener('click', function () { camera.open(); });
  el('ret-camera-close').addEventListener('click', function () { camera.close(); });
  el('ret-shoot').addEventListener('click', function () {
    var b = this;
    b.disabled = true;
    camera.shoot().then(upload, function () {
      el('ret-photo-status').textContent = t('ret_camera_failed', { message: t('ret_no_frame') });
    }).then(function () { b.disabled = false; });
  });
  el('ret-file').addEventListener('change', function () {
    var files = Array.prototype.slice.call(this.files || []);
    this.value = ''; // the same file may be chosen again
    files.reduce(function (p, f) { return p.then(function () { return upload(f); }); }, Promise.resolve());
  });
  window.addEventListener('pagehide', function () { camera.close(); });

  function upload(blob) {
    if (!receipt || receipt.state !== 'open') return Promise.resolve();
    var id = receipt.receipt_id;
    el('ret-photo-status').textContent = t('ret_photo_sending');
    return S.api('POST', API + '/receipts/' + enc(id) + '/photos', blob, 30000).then(function (r) {
      if (r.ok) {
        shots[r.body.sha256] = URL.createObjectURL(blob);
        el('ret-photo-status').textContent = t('ret_photo_saved', { sha: r.body.sha256.slice(0, 8) });
        S.record('returns_photo', r.body.sha256);
        if (receipt && receipt.receipt_id === id) setReceipt(r.body.receipt);
        S.play('ok');
        return;
      }
      el('ret-photo-status').textContent = t('ret_photo_failed', { message: errorText(r) });
      S.play('error');
      if (r.body.error === 'rma_frozen') frozen({ code: rma ? rma.rma_id : '' });
    }, function () {
      el('ret-photo-status').textContent = t('ret_photo_failed', { message: t('err_network') });
    });
  }

  // --- finish: the verdict and the label ------------------------------------------------------

  var finishing = false;
  el('ret-finish').addEventListener('click', function (ev) {
    if (ev.detail === 0 || !receipt || finishing || S.alarm.isUp() || missing().length) return; // a tap, not the scanner's Enter
    finishing = true;
    renderActions();
    var id = receipt.receipt_id;
    S.api('POST', API + '/receipts/' + enc(id) + '/finish', {}, 15000).then(function (r) {
      if (r.ok) {
        camera.close();
        labelJob = r.body.label_job;
        setReceipt(r.body.receipt);
        renderVerdict(r.body.verdict, r.body.label_job);
        el('ret-result').scrollIntoView({ block: 'start', behavior: 'smooth' });
        var q = r.body.verdict.qualifies;
        say(q ? 'ok' : 'bad', t(q ? 'ret_qualifies' : 'ret_not_qualifies'), q ? 'qualifies' : 'rejected');
        S.play(q ? 'ok' : 'error');
        return;
      }
      if (r.body.error === 'rma_frozen') frozen({ code: rma ? rma.rma_id : '' });
      else if (r.body.error === 'receipt_finished') reload(id);
      else { say('bad', errorText(r), 'refused'); S.play('error'); }
    }, function () {
      // the edge may have finished it: ask it what the receipt is now instead of finishing twice
      say('bad', t('err_network'), 'refused');
      reload(id);
    }).then(function () { finishing = false; renderActions(); focusScan(); });
  });

  function dispositionRow(l, rc) {
    var line = (rc.lines || []).filter(function (x) { return x.sku === l.sku; })[0];
    var li = make('li', 'ret-disposition ret-disposition-' + l.disposition);
    li.dataset.sku = l.sku;
    li.dataset.disposition = l.disposition;
    li.appendChild(make('span', 'grow', (line && line.name ? line.name : l.sku) + ' × ' + l.qty));
    if (l.condition) li.appendChild(make('span', 'muted', word('ret_condition_', l.condition)));
    li.appendChild(make('b', 'ret-disposition-word', word('ret_disposition_', l.disposition) +
                        (l.bin ? ' → ' + l.bin : '')));
    return li;
  }
  function reasonText(reason, rc) {
    var key = 'ret_verdict_' + reason.code;
    var text = S.config.messages[key] !== undefined ? t(key) : S.msg(reason.message) || reason.code;
    if (!reason.sku) return text;
    var line = ((rc && rc.lines) || []).filter(function (l) { return l.sku === reason.sku; })[0];
    var name = line && line.name ? line.name : reason.sku;
    return text + (S.config.lang === 'zh' ? '(' + name + ')' : ' (' + name + ')');
  }
  function renderVerdict(v, job) {
    el('ret-result').hidden = false;
    var out = el('ret-outcome');
    out.textContent = t(v.qualifies ? 'ret_qualifies' : 'ret_not_qualifies');
    out.className = 'ret-outcome ' + (v.qualifies ? 'ret-yes' : 'ret-no');
    el('ret-result').dataset.qualifies = v.qualifies ? 'yes' : 'no';
    var reasons = el('ret-reasons');
    reasons.textContent = '';
    (v.reasons || []).forEach(function (x) {
      var li = make('li', null, reasonText(x, receipt));
      li.dataset.code = x.code;
      reasons.appendChild(li);
    });
    var list = el('ret-dispositions');
    list.textContent = '';
    (v.lines || []).forEach(function (l) { list.appendChild(dispositionRow(l, receipt || {})); });
    if (job !== undefined && job !== null) labelJob = job;
    renderLabel(null);
  }
  function renderLabel(job) {
    var p = el('ret-label');
    if (!labelJob) { p.textContent = ''; delete p.dataset.state; return; }
    var state = job ? job.state : (p.dataset.state || 'queued');
    p.dataset.state = state;
    p.className = 'ret-label ret-label-' + state;
    p.textContent = t(state === 'printed' ? 'ret_label_printed' : state === 'failed' || state === 'cancelled'
      ? 'ret_label_failed' : 'ret_label_sent', { state: word('job_', state) });
    if (!job) S.api('GET', '/api/v1/print-jobs/' + enc(labelJob)).then(function (r) {
      if (r.ok && r.body.job_id === labelJob) renderLabel(r.body);
    }, function () {});
  }
  S.on('job', function (j) { if (labelJob && j.job_id === labelJob) renderLabel(j); });

  /* Ask the edge what the receipt is now (finished elsewhere, after a lost answer, on a reload). */
  function reload(id) {
    return S.api('GET', API + '/receipts/' + enc(id)).then(function (r) {
      var rc = r.ok ? r.body : null;
      if (!rc) { if (r.status === 404) clearBench(); return null; }
      if (rc.label_job) labelJob = rc.label_job;
      if (!rc.rma_id) { rma = null; setReceipt(rc); return rc; }
      return S.api('GET', API + '/lookup?code=' + enc(rc.rma_id)).then(function (r) {
        if (r.ok) rma = r.body.rma;
        setReceipt(rc);
        return rc;
      });
    });
  }

  el('ret-next').addEventListener('click', function () {
    clearBench();
    focusScan();
    say('idle', t('ret_scan_ready'));
  });

  // the RMA cancelled at the hub while its parcel is here: the alarm comes from the stream; show it
  S.on('alarm', function () {
    if (rma && receipt && receipt.state === 'open') {
      S.api('GET', API + '/lookup?code=' + enc(rma.rma_id)).then(function (r) {
        if (r.ok && rma && r.body.rma.rma_id === rma.rma_id) { rma = r.body.rma; renderRma(); renderActions(); }
      }, function () {});
    }
  });
  S.on('alarm_up', renderActions);
  S.on('alarms_cleared', renderActions);

  window.ScanEdge.returns = {
    receipt: function () { return receipt; },
    rma: function () { return rma; },
    queue: queue.items,
    camera: camera
  };

  // a reload resumes the receipt that was on the bench before any queued scan goes out
  focusScan = S.wedge(el('scan-input'), el('kbd-toggle'), queue.push);
  renderHistory();
  (saved.receipt_id ? reload(saved.receipt_id) : Promise.resolve(null)).then(null, function () {})
    .then(function () { resumed = true; queue.pump(); });
})();
