/* scanedge pages, shared part: words, API calls, sounds, the live stream, connection banners
 * and the full-screen alarm. Plain ES2017, no modules, no build step: runs in Chromium and in
 * Android WebView as it is. Everything public hangs off window.ScanEdge. */
(function () {
  'use strict';

  var CONFIG = JSON.parse(document.getElementById('scanedge-config').textContent);
  var T = CONFIG.messages;
  var HEARTBEAT_TIMEOUT_MS = 10000; // the stream sends a status event every 3 s
  var KINDS = ['state', 'status', 'scan', 'alarm', 'alarm_ack', 'job', 'printer_alarm', 'freeze',
               'unfreeze', 'conflict', 'sync', 'waybill', 'interception', 'message', 'order_view', 'p0_order',
               'note', 'note_read'];

  function t(key, vars) {
    var s = T[key] || key;
    if (vars) s = s.replace(/\{(\w+)\}/g, function (m, k) { return k in vars ? vars[k] : m; });
    return s;
  }
  /* A {zh, en} message from the edge in the page's language. */
  function msg(m) {
    if (!m) return '';
    if (typeof m === 'string') return m;
    return m[CONFIG.lang] || m.zh || m.en || '';
  }
  function el(id) { return document.getElementById(id); }
  function make(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clock(iso) {
    if (!iso) return '';
    var d = typeof iso === 'number' ? new Date(iso) : new Date(iso);
    if (isNaN(d)) return String(iso);
    var today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString(CONFIG.lang === 'zh' ? 'zh-CN' : 'en-GB')
                 : d.toLocaleString(CONFIG.lang === 'zh' ? 'zh-CN' : 'en-GB');
  }
  /* An id made here, unique enough for scan_id / idempotency keys; crypto.randomUUID needs a
   * secure context, which a LAN page over http is not. */
  function newId(prefix) {
    var b = new Uint8Array(10);
    (window.crypto || window.msCrypto).getRandomValues(b);
    var hex = Array.prototype.map.call(b, function (x) { return ('0' + x.toString(16)).slice(-2); }).join('');
    return (prefix || 'p') + '-' + Date.now().toString(36) + '-' + hex;
  }
  function store(key, value) {
    try {
      if (value === undefined) return JSON.parse(localStorage.getItem(key) || 'null');
      localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* private mode, full storage: the page still works without memory */ }
    return null;
  }
  /* A word from the catalogue for a value the edge sends (a verdict, a job state), the value
   * itself when the catalogue has none: never a raw key on the page. */
  function word(prefix, value) {
    var key = prefix + value;
    return CONFIG.messages[key] !== undefined ? t(key) : String(value);
  }
  /* An answer of the edge in the page's words: its error code (err_<code>, filled with
   * `params`), never its English message. */
  function errorText(r, params) {
    var b = (r && r.body) || {};
    if (b.error && CONFIG.messages['err_' + b.error] !== undefined) return t('err_' + b.error, params);
    return t('err_other', { status: (r && r.status) || '?' });
  }
  /* An answer worth sending again (the edge busy or failing), not a refusal. */
  function retryable(r) { return r.status >= 500 || r.status === 429 || r.status === 408; }
  /* Who is signed in at this station (GET /api/v1/session): events record that person, never a
   * name typed on the page. null until known; the sign-in screen shows when the edge says 401. */
  var who = null;
  function operator() { return who ? who.name : ''; }

  /* For the browser tests and for debugging on a device: what the page made noise about. */
  var noise = [];
  window.scanedgeLog = noise;
  function record(kind, detail) {
    noise.push({ kind: kind, detail: detail, at: Date.now() });
    if (noise.length > 200) noise.shift();
  }

  // --- HTTP ---------------------------------------------------------------------------------

  /* fetch with a timeout. Resolves {status, body} for every HTTP answer; rejects only when the
   * edge could not be reached (then nothing was done, or the caller retries idempotently). */
  function api(method, path, body, timeoutMs) {
    var ctrl = window.AbortController ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, timeoutMs || 8000) : null;
    var init = { method: method, headers: {}, cache: 'no-store', signal: ctrl ? ctrl.signal : undefined };
    if (body instanceof FormData || body instanceof Blob) {
      init.body = body; // a Blob (a photo) goes as it is, its type as the Content-Type
    } else if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      clearTimeout(timer);
      if (r.status === 401 && path.indexOf('/api/v1/session') !== 0) signin.show();
      var type = r.headers.get('Content-Type') || '';
      var parse = type.indexOf('json') >= 0 ? r.json() : Promise.resolve(null);
      return parse.catch(function () { return null; }).then(function (b) {
        return { status: r.status, ok: r.ok, body: b || {} };
      });
    }, function (err) {
      clearTimeout(timer);
      edge.requestFailed();
      throw err;
    });
  }

  // --- the scan field -------------------------------------------------------------------------

  /* A keyboard-wedge scanner types the code and Enter into whatever has the focus: `input` keeps
   * it (after a tap, a blur, a tab switch) unless a person is using another field or a dialog,
   * and each code goes to onCode. Without a soft keyboard by default; the button brings it up. */
  function wedge(input, toggle, onCode) {
    function keepFocus() {
      var a = document.activeElement;
      var typing = a && a !== input && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA' ||
                                        a.tagName === 'SELECT' || a.isContentEditable);
      if (!typing && !document.querySelector('dialog[open]')) input.focus({ preventScroll: true });
    }
    input.addEventListener('blur', function () { setTimeout(keepFocus, 0); });
    document.addEventListener('click', function () { setTimeout(keepFocus, 0); });
    document.addEventListener('visibilitychange', function () { if (!document.hidden) keepFocus(); });
    window.addEventListener('focus', keepFocus);
    toggle.addEventListener('click', function () {
      var on = input.getAttribute('inputmode') === 'none';
      input.setAttribute('inputmode', on ? 'text' : 'none');
      this.setAttribute('aria-pressed', on ? 'true' : 'false');
      input.blur(); input.focus();
    });
    // Enter (or the CR some scanners send) ends a code
    input.addEventListener('keydown', function (ev) {
      if (ev.key !== 'Enter' && ev.keyCode !== 13) return;
      ev.preventDefault();
      var code = input.value.replace(/[\r\n]+$/, '');
      input.value = '';
      if (code.trim()) onCode(code);
    });
    keepFocus();
    return keepFocus;
  }

  /* Scans on their way to the edge. Each gets a scan_id here and waits in a queue kept in
   * localStorage under `key`, so:
   *  - a network error retries with the same scan_id (the edge answers a retry from what it
   *    stored: counted once, never twice), and a reload resumes the queue (nothing lost);
   *  - scans go one at a time, in the order they were made (counts depend on it);
   *  - while an alarm or a note of this station is up they are held (not sent) and go out after
   *    a person tapped it away, so a scan made meanwhile is judged with the person aware of it;
   *  - nothing goes before the stream's first "state" said which alarms are up (a scan held under
   *    an alarm must not go out on a reload before the alarm is known again).
   * send(item) answers a promise of 'done' (the edge answered: next), 'hold' (keep it queued
   * until the alarms are cleared) or {retry: text} (not recorded: the same scan again, with
   * backoff); a rejected promise (the edge out of reach) retries too. opts.canSend: a page's own
   * condition besides those; opts.after: called after each attempt. */
  function scanQueue(key, send, opts) {
    opts = opts || {};
    var items = store(key) || [];
    var sending = false, retryTimer = null, backoff = 0, lastError = null, ready = false;
    function save() { store(key, items); }
    function status() {
      var box = el('scan-status'), waiting = items.length - (sending ? 1 : 0), parts = [];
      if (lastError) parts.push(lastError);
      if (waiting > 0) parts.push(t('scan_queued', { n: waiting }));
      box.textContent = parts.join(' · ');
      box.classList.toggle('warn', !!lastError || (waiting > 0 && (alarm.isUp() || note.isUp())));
      alarm.setHeld(alarm.isUp() ? items.length : 0);
    }
    function retry(text) {
      lastError = text;
      backoff = Math.min(5000, backoff ? backoff * 2 : 300);
      clearTimeout(retryTimer);
      retryTimer = setTimeout(function () { retryTimer = null; pump(); }, backoff);
    }
    function pump() {
      status();
      if (!ready || sending || retryTimer || !items.length || alarm.isUp() || note.isUp() ||
          (opts.canSend && !opts.canSend())) return;
      sending = true;
      Promise.resolve(items[0]).then(send).then(function (outcome) {
        if (outcome && outcome.retry !== undefined) { retry(outcome.retry); return; }
        if (outcome === 'hold') return;
        items.shift(); save();
        backoff = 0; lastError = null;
        edge.requestOk();
      }, function () { retry(t('scan_retrying')); }).then(function () {
        sending = false;
        status();
        if (opts.after) opts.after();
        if (!retryTimer) pump();
      });
    }
    on('alarms_cleared', pump);
    on('notes_cleared', pump);
    on('state', function () {
      ready = true;
      if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
      pump();
    });
    return {
      push: function (code) {
        items.push({ scan_id: newId(CONFIG.device_id), code: code, at: Date.now() });
        save();
        record('scan_typed', code);
        pump();
      },
      pump: pump,
      items: function () { return items.slice(); }
    };
  }

  // --- sound, vibration, voice ----------------------------------------------------------------

  var audio = null;
  function audioContext() {
    var C = window.AudioContext || window.webkitAudioContext;
    if (!C) return null;
    if (!audio) { try { audio = new C(); } catch (e) { return null; } }
    if (audio.state === 'suspended' && audio.resume) audio.resume().catch(function () {});
    return audio;
  }
  // Browsers start audio only after a gesture; a scanner's key press counts as one.
  ['keydown', 'pointerdown', 'touchstart'].forEach(function (type) {
    document.addEventListener(type, audioContext, { capture: true, passive: true });
  });
  var SOUNDS = {
    ok: [[1320, 0.08]],
    error: [[330, 0.22], [220, 0.3]],
    alarm: [[1050, 0.18], [700, 0.18], [1050, 0.18], [700, 0.18], [1050, 0.18], [700, 0.3]]
  };
  function play(name) {
    record('sound', name);
    var ac = audioContext();
    if (!ac) return;
    var at = ac.currentTime + 0.01;
    SOUNDS[name].forEach(function (tone) {
      var osc = ac.createOscillator(), gain = ac.createGain();
      osc.type = name === 'ok' ? 'sine' : 'square';
      osc.frequency.value = tone[0];
      gain.gain.setValueAtTime(name === 'ok' ? 0.3 : 0.5, at);
      gain.gain.exponentialRampToValueAtTime(0.001, at + tone[1]);
      osc.connect(gain); gain.connect(ac.destination);
      osc.start(at); osc.stop(at + tone[1]);
      at += tone[1] + 0.03;
    });
  }
  function vibrate(pattern) {
    record('vibrate', pattern);
    try { if (navigator.vibrate) navigator.vibrate(pattern); } catch (e) { /* not allowed */ }
  }
  /* The compact verdict box and the recent scans of the bench-side pages (/returns, /dock): the
   * elements <prefix>-verdict, -verdict-word, -verdict-message, -history, -history-empty.
   * wordOf(kind) names a verdict in words; history is the page's saved list (newest first, the
   * last 10 kept), onChange saves it. alarm(): something is wrong with the parcel: a low tone, a
   * buzz and a red flash, like the alarms, seen even by a person scrolled down the page. */
  function verdictPanel(prefix, wordOf, history, onChange) {
    var box = el(prefix + '-verdict');
    function say(kind, text, wordKey) {
      box.className = 'verdict verdict-compact ' + (kind === 'ok' ? 'verdict-ok' : kind === 'bad' ? 'verdict-bad'
        : kind === 'idle' ? 'verdict-idle' : 'verdict-pending');
      box.dataset.verdict = wordKey || kind;
      el(prefix + '-verdict-word').textContent = wordKey ? wordOf(wordKey) : '';
      el(prefix + '-verdict-message').textContent = text || '';
    }
    function alarm() {
      play('error');
      vibrate([300, 100, 300, 100, 300]);
      box.scrollIntoView({ block: 'nearest' });
      box.classList.remove('verdict-flash');
      void box.offsetWidth; // restart the animation on a second alarm in a row
      box.classList.add('verdict-flash');
    }
    function render() {
      var list = el(prefix + '-history');
      list.textContent = '';
      history.forEach(function (h) {
        var li = make('li');
        li.appendChild(make('span', 'h-verdict ' + (h.kind === 'ok' || h.kind === 'accepted' ? 'h-ok' : 'h-bad'),
          wordOf(h.kind)));
        li.appendChild(make('span', 'h-code', h.code + '  ' + clock(h.at)));
        li.appendChild(make('span', 'h-msg', h.text));
        list.appendChild(li);
      });
      el(prefix + '-history-empty').hidden = history.length > 0;
    }
    function remember(code, kind, text) {
      history.unshift({ code: code, kind: kind, text: text, at: Date.now() });
      history.splice(10);
      onChange();
      render();
    }
    return { say: say, alarm: alarm, remember: remember, render: render, history: history };
  }
  function speak(text) {
    record('speak', text);
    if (!text || !('speechSynthesis' in window) || !window.SpeechSynthesisUtterance) return;
    try {
      window.speechSynthesis.cancel();
      var u = new SpeechSynthesisUtterance(text);
      u.lang = 'zh-CN';
      u.rate = 0.95;
      window.speechSynthesis.speak(u);
    } catch (e) { /* no voice installed */ }
  }

  // --- the live stream ------------------------------------------------------------------------

  var handlers = {};
  function on(kind, fn) { (handlers[kind] = handlers[kind] || []).push(fn); }
  function emit(kind, data, id) {
    (handlers[kind] || []).concat(handlers['*'] || []).forEach(function (fn) {
      try { fn(data, kind, id); } catch (e) { if (window.console) console.error(e); }
    });
  }

  var live = { es: null, lastId: null, lastMessage: 0, state: null, retryTimer: null, up: false };
  function connect() {
    clearTimeout(live.retryTimer);
    if (live.es) live.es.close();
    var params = new URLSearchParams({ station: CONFIG.station });
    // the edge sends a page its station's messages and the device's; the supervisor wants all
    if (CONFIG.page === 'supervisor') params.set('all', '1');
    if (live.lastId !== null) params.set('after', live.lastId);
    var es = new EventSource('/api/v1/stream?' + params.toString());
    live.es = es;
    live.lastMessage = Date.now();
    KINDS.forEach(function (kind) {
      es.addEventListener(kind, function (ev) {
        live.lastMessage = Date.now();
        if (ev.lastEventId) live.lastId = Number(ev.lastEventId);
        var data;
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        if (kind === 'state' || kind === 'status') { edge.streamUp(); banners(data.sync); }
        if (kind === 'sync' && data.freeze_status) { // the offline policy changed its mind
          banners({ hub: data.freeze_status !== 'local', online: data.hub_online,
                    offline_since: data.offline_since, freeze_status: data.freeze_status });
        }
        if (kind === 'state') { live.state = data; if (live.lastId === null) live.lastId = data.last_id; }
        emit(kind, data, ev.lastEventId);
      });
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        // refused (503: too many pages) or the edge is gone: find out which, then retry
        fetch('/healthz', { cache: 'no-store' }).then(function (r) {
          edge.set(r.ok, r.ok);
        }, function () { edge.set(false, false); });
        live.retryTimer = setTimeout(connect, 3000);
      } else {
        edge.streamDown(); // EventSource reconnects by itself, with Last-Event-ID
      }
    };
  }
  // Leaving the page closes the stream at once: a browser holds at most 6 connections to one
  // host, and a stream left open by a page in the back/forward cache would take one of them.
  window.addEventListener('pagehide', function () {
    clearTimeout(live.retryTimer);
    if (live.es) { live.es.close(); live.es = null; }
  });
  window.addEventListener('pageshow', function (ev) { if (ev.persisted) connect(); });
  // A dead Wi-Fi link looks like silence, not like an error: watch the heartbeats.
  setInterval(function () {
    if (live.es && Date.now() - live.lastMessage > HEARTBEAT_TIMEOUT_MS) {
      edge.streamDown();
      connect();
    }
  }, 1000);

  /* Edge reachability: the stream and the last API calls. */
  var edge = {
    streamOk: true, busy: false, failures: 0,
    streamUp: function () { this.streamOk = true; this.busy = false; this.failures = 0; this.render(); },
    streamDown: function () { this.streamOk = false; this.render(); },
    requestFailed: function () { this.failures += 1; this.render(); },
    requestOk: function () { this.failures = 0; this.render(); },
    set: function (reachable, busy) {
      this.streamOk = false; this.busy = !!busy;
      if (!reachable) this.failures += 1; else this.failures = 0;
      this.render();
    },
    down: function () { return (!this.streamOk && !this.busy) || this.failures > 0; },
    render: function () {
      var down = this.down();
      el('conn-edge').hidden = !down;
      el('conn-busy').hidden = !(this.busy && !down);
      document.body.classList.toggle('edge-down', down);
      freezeBanner();
      emit('edge', { down: down });
    }
  };

  var lastSync = null;
  function banners(sync) {
    if (!sync) return;
    lastSync = sync;
    var hubDown = sync.hub && sync.online === false;
    el('conn-hub').hidden = !hubDown;
    if (hubDown) el('conn-hub').textContent = t('conn_hub_offline', { since: clock(sync.offline_since) || '?' });
    freezeBanner();
  }
  // With the edge out of reach, the page cannot know about freezes either.
  function freezeBanner() {
    el('conn-freeze').hidden = !((lastSync && lastSync.freeze_status === 'unknown') || edge.down());
  }

  // --- the alarm ------------------------------------------------------------------------------

  var alarm = {
    active: [],      // alarms for this station, oldest first
    acked: {},       // ids acknowledged here or elsewhere: a replayed "alarm" must not revive them
    held: 0,         // scans typed while the alarm is up (the scanner module sends them after)
    repeat: null,
    isUp: function () { return this.active.length > 0; },
    relevant: function (a) {
      return a && a.alarm_id && a.active !== false && a.level !== 'warning' &&
             (!a.station || a.station === CONFIG.station);
    },
    add: function (a) {
      if (!this.relevant(a) || this.acked[a.alarm_id]) return;
      for (var i = 0; i < this.active.length; i++) if (this.active[i].alarm_id === a.alarm_id) return;
      this.active.push(a);
      this.render();
      this.loud(a);
      emit('alarm_up', a);
    },
    remove: function (id) {
      this.acked[id] = true;
      this.active = this.active.filter(function (a) { return a.alarm_id !== id; });
      this.render();
      if (!this.isUp()) emit('alarms_cleared', {});
    },
    replace: function (list) { // the state a (re)connect starts from
      var self = this, ids = {};
      (list || []).forEach(function (a) { ids[a.alarm_id] = true; });
      this.active = this.active.filter(function (a) { return ids[a.alarm_id]; });
      (list || []).forEach(function (a) { self.add(a); });
      this.render();
      if (!this.isUp()) emit('alarms_cleared', {});
    },
    loud: function (a) {
      play('alarm');
      vibrate([500, 150, 500, 150, 900]);
      speak(a.speak || (a.message && a.message.zh) || '');
    },
    render: function () {
      var box = el('alarm'), up = this.isUp();
      box.hidden = !up;
      document.body.classList.toggle('alarm-up', up);
      clearInterval(this.repeat);
      if (!up) return;
      var a = this.active[0];
      el('alarm-message').textContent = msg(a.message) || a.type;
      var sub = [];
      if (CONFIG.lang === 'zh' && a.message && a.message.en) sub.push(a.message.en);
      if (a.order_id) sub.push(a.order_id);
      if (a.created_at) sub.push(clock(a.created_at));
      el('alarm-sub').textContent = sub.join(' · ');
      el('alarm-more').hidden = this.active.length < 2;
      el('alarm-more').textContent = t('alarm_more', { n: this.active.length - 1 });
      el('alarm-held').hidden = !this.held;
      el('alarm-held').textContent = t('alarm_held_scans', { n: this.held });
      el('alarm-who').textContent = who ? t('ack_by', { name: who.name }) : '';
      el('alarm-error').textContent = '';
      // keep reminding until a person answers: beep and buzz every 5 s
      this.repeat = setInterval(function () { play('alarm'); vibrate([400, 100, 400]); }, 5000);
    },
    setHeld: function (n) { this.held = n; if (this.isUp()) this.render(); },
    ack: function () {
      var a = this.active[0], self = this;
      if (!a) return;
      el('alarm-ack').disabled = true;
      // who acknowledged is the signed-in person (the edge takes it from the session)
      api('POST', '/api/v1/alarms/' + encodeURIComponent(a.alarm_id) + '/ack', {})
        .then(function (r) {
          if (r.ok || r.status === 404) { self.remove(a.alarm_id); edge.requestOk(); }
          else el('alarm-error').textContent = t('alarm_ack_failed', { message: r.body.message || r.status });
        }, function (e) {
          el('alarm-error').textContent = t('alarm_ack_failed', { message: e.message || e });
        })
        .then(function () { el('alarm-ack').disabled = false; });
    }
  };
  // Only a deliberate tap or click dismisses it: a keyboard "click" (the scanner's Enter on a
  // focused button) has event.detail 0 and is ignored; the button is also out of the tab order.
  el('alarm-ack').addEventListener('click', function (ev) {
    if (ev.detail === 0) { ev.preventDefault(); return; }
    alarm.ack();
  });
  el('alarm-ack').addEventListener('keydown', function (ev) { ev.preventDefault(); });

  // --- notes (备注) ----------------------------------------------------------------------------

  /* A note from the hub for an order worked on at this station: a dialog that blocks the
   * station's scans until a person taps it away (the edge answers the order's scans with
   * note_pending until then). Shown from the stream, a scan's answer or the order on a reload. */
  var note = {
    current: null,
    read: {},  // command ids read here or elsewhere: a late copy must not bring it back
    isUp: function () { return !!this.current; },
    show: function (n) {
      if (!n || !n.command_id || this.read[n.command_id]) return;
      if (this.current && this.current.command_id === n.command_id) return;
      this.current = n;
      el('note-order').textContent = t('note_order', { order_id: n.order_id }) +
        (n.issued_at ? ' · ' + clock(n.issued_at) : '');
      el('note-text').textContent = n.note;
      el('note-who').textContent = who ? t('ack_by', { name: who.name }) : '';
      el('note-error').textContent = '';
      el('note').hidden = false;
      document.body.classList.add('alarm-up');
      play('alarm');
      vibrate([300, 100, 300]);
      speak(t('note_order', { order_id: n.order_id }) + ' ' + n.note);
      emit('note_up', n);
    },
    hide: function (commandId) {
      this.read[commandId] = true;
      if (!this.current || this.current.command_id !== commandId) return;
      this.current = null;
      el('note').hidden = true;
      document.body.classList.toggle('alarm-up', alarm.isUp());
      emit('notes_cleared', {});
    },
    submit: function () {
      var n = this.current, self = this;
      if (!n) return;
      el('note-read').disabled = true;
      api('POST', '/api/v1/orders/' + encodeURIComponent(n.order_id) + '/notes/' +
          encodeURIComponent(n.command_id) + '/read', { station: CONFIG.station })
        .then(function (r) {
          // 409: read already (another tab) or replaced by a newer note, which comes on its own
          if (r.ok || r.status === 409 || r.status === 404) { self.hide(n.command_id); edge.requestOk(); }
          else el('note-error').textContent = t('note_read_failed', { message: (r.body && r.body.message) || r.status });
        }, function (e) {
          el('note-error').textContent = t('note_read_failed', { message: e.message || e });
        })
        .then(function () { el('note-read').disabled = false; });
    }
  };
  el('note-read').addEventListener('click', function (ev) {
    if (ev.detail === 0) { ev.preventDefault(); return; } // a tap, never the scanner's Enter
    note.submit();
  });
  el('note-read').addEventListener('keydown', function (ev) { ev.preventDefault(); });
  on('note', function (n) {
    if ((n.stations || []).indexOf(CONFIG.station) >= 0) note.show(n);
  });
  on('note_read', function (n) { note.hide(n.command_id); });

  // --- signing in -------------------------------------------------------------------------------

  /* The sign-in screen: a badge scan (the scanner types it and Enter) or a user id and PIN. After
   * a sign-in the page reloads, so that the live stream and every panel start as that person
   * (held scans stay in localStorage and are sent then). */
  var signin = {
    show: function () {
      if (!el('signin').hidden) return;
      el('signin').hidden = false;
      document.body.classList.add('signin-up');
      el('signin-badge').value = '';
      el('signin-badge').focus();
    },
    submit: function (body) {
      body.station = CONFIG.station;
      el('signin-submit').disabled = true;
      el('signin-error').textContent = '';
      return api('POST', '/api/v1/session', body).then(function (r) {
        if (r.ok) { location.reload(); return; }
        el('signin-error').textContent = t('signin_failed', { message: r.body.message || r.status });
        el('signin-badge').value = '';
        el('signin-pin').value = '';
        el('signin-badge').focus();
      }, function (e) {
        el('signin-error').textContent = t('signin_failed', { message: e.message || e });
      }).then(function () { el('signin-submit').disabled = false; });
    }
  };
  el('signin-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var badge = el('signin-badge').value.trim();
    if (badge) signin.submit({ badge: badge });
    else signin.submit({ user_id: el('signin-user').value.trim(), pin: el('signin-pin').value });
  });
  function showWho() {
    var b = el('who');
    b.hidden = !who || who.kind !== 'user';
    if (who) b.textContent = t('signed_in_as', { name: who.name, role: T['role_' + who.role] || who.role });
  }
  el('who').addEventListener('click', function () {
    api('DELETE', '/api/v1/session').then(function () { location.reload(); });
  });
  api('GET', '/api/v1/session').then(function (r) {
    if (r.status === 401) { signin.show(); return; }
    if (r.ok) { who = r.body; showWho(); emit('who', who); }
  }, function () { /* the edge is down: the banner says so, the stream retries */ });

  on('state', function (s) { alarm.replace(s.alarms); });
  on('alarm', function (a) { if (a.active === false) alarm.remove(a.alarm_id); else alarm.add(a); });
  on('alarm_ack', function (a) { alarm.remove(a.alarm_id); });

  // --- the order panel (scan and bench pages) -------------------------------------------------

  var orderSeq = {};
  /* Show an order's lines with their counts; `seq` (the scan event's number) keeps an older
   * answer that arrives late from undoing a newer one. */
  function renderOrder(order, seq, frozen) {
    if (!el('order')) return;
    if (order && seq !== undefined && seq !== null) {
      if (orderSeq[order.order_id] !== undefined && seq < orderSeq[order.order_id]) return;
      orderSeq[order.order_id] = seq;
    }
    el('order-empty').hidden = !!order;
    el('order-progress').hidden = !order;
    el('order-id').textContent = order ? order.order_id : '';
    el('order-p0').hidden = !(order && order.priority === 'P0');
    el('order-complete').hidden = !(order && order.complete);
    el('order-frozen').hidden = !(order && (frozen || order.freeze));
    if (order && order.note) note.show(order.note);
    var lines = el('order-lines');
    lines.textContent = '';
    var gifts = el('order-gift-list');
    gifts.textContent = '';
    el('order-gifts').hidden = !(order && order.gifts && order.gifts.length);
    if (!order) { emit('order', null); return; }
    el('order-progress').textContent = t('items_packed', { packed: order.items_packed, total: order.total_items });
    order.lines.forEach(function (line) {
      var li = make('li', 'line' + (line.packed >= line.qty ? ' line-done' : ''));
      li.dataset.sku = line.sku;
      li.appendChild(make('span', 'line-name', line.name || line.sku));
      var meta = line.sku;
      if (line.lot) meta += ' · ' + t('lot') + ' ' + line.lot;
      if (line.expires) meta += ' · ' + t('expires') + ' ' + line.expires;
      li.appendChild(make('span', 'line-meta', meta));
      var count = make('span', 'line-count', line.packed + '/' + line.qty);
      count.setAttribute('aria-label', t('packed') + ' ' + line.packed + ' / ' + t('qty') + ' ' + line.qty);
      li.appendChild(count);
      lines.appendChild(li);
    });
    (order.gifts || []).forEach(function (g) {
      var li = make('li', g.confirmed ? 'gift-done' : null, g.name + ' × ' + g.qty);
      if (!g.confirmed && g.gift_no !== undefined) {
        // the packer's tap: this gift is in the box (scanning the gift's code does the same)
        var b = make('button', 'btn btn-small gift-confirm', t('gift_confirm'));
        b.type = 'button';
        b.addEventListener('click', function () {
          if (alarm.isUp()) return;
          b.disabled = true;
          api('POST', '/api/v1/orders/' + encodeURIComponent(order.order_id) + '/gifts/' + g.gift_no +
              '/confirm', {}).then(function (r) { if (r.ok) renderOrder(r.body, null); else b.disabled = false; },
            function () { b.disabled = false; });
        });
        li.appendChild(b);
      } else if (g.confirmed) {
        li.appendChild(make('span', 'gift-ok', ' ✓'));
      }
      gifts.appendChild(li);
    });
    emit('order', order);
  }
  on('state', function (s) {
    if (el('order') && s.open_order !== undefined) {
      // a reconnect's snapshot: newer than anything seen before it
      if (s.open_order) orderSeq[s.open_order.order_id] = -1;
      renderOrder(s.open_order, null);
    }
  });
  on('scan', function (r) {
    if (r.station === CONFIG.station && r.order) renderOrder(r.order, r.seq, r.verdict === 'frozen');
  });

  // --- the station's to-do list (bench, supervisor) -----------------------------------------------

  /* Orders not printed yet, P0 on top, with how long each waited; a new P0 flashes the card. */
  var todoTimer = null, todoP0 = {};
  function loadTodo() {
    if (!el('todo')) return;
    clearTimeout(todoTimer);
    api('GET', '/api/v1/todo?station=' + encodeURIComponent(CONFIG.station)).then(function (r) {
      if (!r.ok) return;
      var list = el('todo'), fresh = false;
      list.textContent = '';
      r.body.orders.forEach(function (o) {
        var li = make('li', o.priority === 'P0' ? 'todo-p0' : null);
        li.dataset.orderId = o.order_id;
        if (o.priority === 'P0') {
          li.appendChild(make('span', 'badge badge-p0', 'P0'));
          if (!todoP0[o.order_id]) { todoP0[o.order_id] = true; fresh = true; }
        }
        li.appendChild(make('span', 'todo-id', ' ' + o.order_id));
        li.appendChild(make('span', 'muted', ' ' + o.items_packed + '/' + o.total_items + ' · ' +
                            t('todo_waited', { min: Math.floor(o.waiting_s / 60) })));
        if (o.frozen) li.appendChild(make('span', 'badge badge-frozen', t('frozen_badge')));
        list.appendChild(li);
      });
      if (!r.body.orders.length) list.appendChild(make('li', 'muted', t('sup_none')));
      el('todo-p0').textContent = r.body.p0;
      el('todo-p0').classList.toggle('hot', r.body.p0 > 0);
      if (fresh) { el('todo-card').classList.add('flash'); play('ok'); record('p0_order', r.body.p0); }
    }, function () {}).then(function () { todoTimer = setTimeout(loadTodo, 30000); });
  }
  // another page of this station changed the order (a gift confirmed): show it here too
  on('order_view', function (m) { if (m.station === CONFIG.station && m.order) renderOrder(m.order, null); });
  ['scan', 'job', 'order_view', 'p0_order', 'state'].forEach(function (kind) {
    on(kind, function () { clearTimeout(todoTimer); todoTimer = setTimeout(loadTodo, 300); });
  });

  window.ScanEdge = {
    config: CONFIG, t: t, msg: msg, el: el, make: make, clock: clock, newId: newId, store: store,
    word: word, errorText: errorText, retryable: retryable,
    operator: operator, who: function () { return who; }, signin: signin, api: api, play: play,
    vibrate: vibrate, note: note, wedge: wedge, scanQueue: scanQueue, verdictPanel: verdictPanel,
    speak: speak, record: record, on: on, emit: emit, live: live, edge: edge, alarm: alarm,
    renderOrder: renderOrder, banners: banners, lastSync: function () { return lastSync; }
  };

  edge.render();
  el('conn-edge').hidden = true;
  connect();
})();
