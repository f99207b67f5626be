/* The bench's pack evidence (docs/evidence.md): the packing filmed with the device camera
 * (MediaRecorder) for at least pack_video_min_s, or photos where the browser cannot record, sent
 * to the edge for the open order. Under evidence_policy the edge refuses the label and the
 * carrier's number until it has them; the print button says so (bench.js asks missing()). */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el;
  var order = null, status = null, rec = null, stream = null, ticker = null;

  function enc(s) { return encodeURIComponent(s); }
  function path(id) { return '/api/v1/orders/' + enc(id) + '/evidence'; }
  function say(key, vars) { el('evidence-state').textContent = key ? t(key, vars) : ''; }
  function canFilm() { return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia); }
  function canRecord() { return canFilm() && typeof window.MediaRecorder === 'function'; }
  function minS() { return status ? status.min_video_s : 10; }

  /* What the policy still asks of the open order, as the edge said ({code, zh, en} each). */
  function missing() { return status && status.order_id === (order && order.order_id) ? status.problems || [] : []; }

  function render() {
    var card = el('evidence-card');
    card.hidden = !order;
    if (!order) return;
    var policy = status ? status.policy : 'off';
    el('evidence-policy').textContent = policy === 'off' ? t('ev_policy_off')
      : t(policy === 'require_video' ? 'ev_policy_video' : 'ev_policy_photo', { s: minS() });
    var recording = !!rec;
    el('evidence-record').hidden = recording || !canRecord();
    el('evidence-stop').hidden = !recording;
    el('evidence-photo').hidden = recording || !canFilm() || canRecord();
    el('evidence-video').hidden = !stream;
    var list = el('evidence-list');
    list.textContent = '';
    ((status && status.items) || []).forEach(function (e) {
      var text = e.kind === 'video' ? t('ev_item_video', { s: (e.duration_s || 0).toFixed(1) })
        : t('ev_item_photo');
      text += ' · ' + (e.size / 1048576).toFixed(1) + ' MB · ' + t(e.uploaded ? 'ev_uploaded' : 'ev_on_device');
      var li = S.make('li', null, text);
      li.dataset.sha = e.sha256;
      list.appendChild(li);
    });
    card.dataset.satisfied = status && status.satisfied ? '1' : '0';
  }

  function load() {
    if (!order) { status = null; render(); S.emit('evidence', null); return; }
    var id = order.order_id;
    S.api('GET', path(id)).then(function (r) {
      if (!order || order.order_id !== id) return;
      status = r.ok ? r.body : null;
      render();
      S.emit('evidence', status);
    }, function () {});
  }

  function camera() {
    if (stream) return Promise.resolve(stream);
    return navigator.mediaDevices.getUserMedia({
      video: { facingMode: 'environment', width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false
    }).then(function (s) {
      stream = s;
      var v = el('evidence-video');
      v.srcObject = s;
      render();
      return v.play ? v.play().catch(function () {}).then(function () { return s; }) : s;
    });
  }
  function cameraOff() {
    if (stream) stream.getTracks().forEach(function (tr) { tr.stop(); });
    stream = null;
    el('evidence-video').srcObject = null;
  }

  function send(id, blob, duration) {
    var q = '?station=' + enc(S.config.station) + (duration ? '&duration_s=' + duration.toFixed(2) : '');
    say('ev_sending');
    return S.api('POST', path(id) + q, blob, 120000).then(function (r) {
      if (r.ok) {
        say('ev_saved', { sha: r.body.sha256.slice(0, 8) });
        S.record('pack_evidence', r.body.sha256);
        S.play('ok');
      } else {
        say('ev_failed', { message: S.errorText(r, r.body) });
        S.play('error');
      }
      load();
    }, function () { say('ev_failed', { message: t('err_network') }); });
  }

  /* The recorder's own type: Chromium WebM, Safari MP4. */
  function recorderType() {
    var types = ['video/webm;codecs=vp8', 'video/webm', 'video/mp4'];
    for (var i = 0; i < types.length; i++) {
      if (!MediaRecorder.isTypeSupported || MediaRecorder.isTypeSupported(types[i])) return types[i];
    }
    return '';
  }

  function start() {
    if (!order || rec) return;
    var id = order.order_id;
    say('ev_camera_starting');
    camera().then(function (s) {
      var type = recorderType();
      var r = new MediaRecorder(s, type ? { mimeType: type } : undefined);
      var chunks = [], began = 0;
      rec = { recorder: r, id: id };
      r.ondataavailable = function (ev) { if (ev.data && ev.data.size) chunks.push(ev.data); };
      r.onstart = function () { began = performance.now(); tick(); };
      r.onstop = function () {
        clearInterval(ticker);
        var seconds = (performance.now() - began) / 1000;
        rec = null;
        cameraOff();
        render();
        var blob = new Blob(chunks, { type: (r.mimeType || type || 'video/webm').split(';')[0] });
        send(id, blob, seconds);
      };
      function tick() {
        clearInterval(ticker);
        ticker = setInterval(function () {
          var s = (performance.now() - began) / 1000;
          say(s < minS() ? 'ev_recording_short' : 'ev_recording', { s: s.toFixed(0), min: minS() });
          el('evidence-stop').disabled = s < minS();
        }, 250);
      }
      el('evidence-stop').disabled = true; // not before the minimum: the edge would refuse it
      r.start(1000);
      render();
    }, function (e) {
      say('ev_camera_failed', { message: (e && e.name) || e });
      S.record('camera_failed', (e && e.name) || String(e));
    });
  }

  function photo() {
    if (!order) return;
    var id = order.order_id;
    camera().then(function () {
      var v = el('evidence-video');
      if (!v.videoWidth) throw new Error('no frame yet');
      var c = document.createElement('canvas');
      c.width = v.videoWidth;
      c.height = v.videoHeight;
      c.getContext('2d').drawImage(v, 0, 0, c.width, c.height);
      return new Promise(function (resolve) { c.toBlob(resolve, 'image/jpeg', 0.88); });
    }).then(function (b) { if (b) send(id, b, 0); }, function (e) {
      say('ev_camera_failed', { message: (e && e.message) || e });
    });
  }

  /* A file from the device (a phone's camera app): a video's length read from its metadata. */
  function fromFile(f) {
    if (!order || !f) return;
    var id = order.order_id;
    if (f.type.indexOf('video/') !== 0) { send(id, f, 0); return; }
    var v = document.createElement('video');
    v.preload = 'metadata';
    v.onloadedmetadata = function () {
      URL.revokeObjectURL(v.src);
      send(id, f, isFinite(v.duration) ? v.duration : 0);
    };
    v.onerror = function () { send(id, f, 0); };
    v.src = URL.createObjectURL(f);
  }

  el('evidence-record').addEventListener('click', start);
  el('evidence-stop').addEventListener('click', function () { if (rec) rec.recorder.stop(); });
  el('evidence-photo').addEventListener('click', photo);
  el('evidence-file').addEventListener('change', function () {
    var f = this.files && this.files[0];
    this.value = '';
    fromFile(f);
  });
  window.addEventListener('pagehide', function () { if (rec) rec.recorder.stop(); cameraOff(); });

  S.on('order', function (o) {
    var changed = (order && order.order_id) !== (o && o.order_id);
    order = o;
    if (changed) {
      if (rec && rec.id !== (o && o.order_id)) rec.recorder.stop(); // the clip stays with its order
      status = null;
      say(null);
      load();
    } else {
      render();
    }
  });

  S.evidence = { missing: missing, status: function () { return status; }, recording: function () { return !!rec; },
                 reload: load };
})();
