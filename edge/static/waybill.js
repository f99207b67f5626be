/* Waybill capture: a photo from the phone or PDA camera -> tracking number and carrier, shown
 * with the region of the photo it was read from; one tap confirms, a candidate can be picked,
 * typing is the last resort.
 *
 * It uses POST /api/v1/waybills (the waybill reader: barcode, then text) when the edge has it;
 * an edge without it answers 404 and the page falls back to POST /api/v1/decode (barcodes
 * only: every decoded symbol becomes a candidate, no carrier). */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el;
  var photo = el('waybill-photo');
  var current = null; // {capture_id?, tracking_number, carrier, source: 'waybills'|'decode'}

  function orderId() { return el('waybill-order').value.trim(); }
  S.on('state', function (s) {
    if (!el('waybill-order').value && s.open_order) el('waybill-order').value = s.open_order.order_id;
  });

  photo.addEventListener('change', function () {
    var file = photo.files && photo.files[0];
    if (!file) return;
    el('waybill-done').hidden = true;
    el('waybill-result').hidden = false;
    el('waybill-found').hidden = true;
    el('waybill-none').hidden = true;
    el('waybill-candidates-box').hidden = true;
    el('waybill-status').textContent = t('waybill_reading');
    var img = el('waybill-img');
    if (img.src && img.src.indexOf('blob:') === 0) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(file);
    el('waybill-figure').hidden = false;
    el('waybill-overlay').textContent = '';
    read(file);
    photo.value = ''; // the same photo may be taken again
  });

  function form(file) {
    var f = new FormData();
    f.append('image', file, file.name || 'photo.jpg');
    if (orderId()) f.append('order_id', orderId());
    return f;
  }

  function read(file) {
    S.api('POST', '/api/v1/waybills', form(file), 30000).then(function (r) {
      // an edge without the waybill reader: Flask's own 404 for an unknown URL
      if (r.status === 404 && /requested URL/.test(r.body.message || '')) {
        return S.api('POST', '/api/v1/decode', form(file), 30000).then(function (d) {
          if (!d.ok) return failed(d);
          show(fromDecode(d.body));
        });
      }
      if (!r.ok) return failed(r);
      r.body.source_endpoint = 'waybills';
      show(r.body);
    }, function (e) { el('waybill-status').textContent = t('waybill_failed', { message: e.message || e }); });
  }
  function failed(r) {
    el('waybill-status').textContent = t('waybill_failed', { message: r.body.message || r.status });
    if (r.status === 409) S.play('error'); // frozen order: the edge raised the alarm too
  }

  function fromDecode(body) {
    var symbols = body.symbols || [];
    return {
      tracking_number: symbols.length === 1 ? symbols[0].text : null,
      carrier: null,
      region: symbols.length ? symbols[0].position : null,
      candidates: symbols.map(function (s) { return { tracking_number: s.text, carriers: [], region: s.position }; }),
      source_endpoint: 'decode'
    };
  }

  function show(res) {
    current = res;
    el('waybill-status').textContent = res.source_endpoint === 'decode' ? t('waybill_decode_only') : '';
    var found = !!res.tracking_number;
    el('waybill-found').hidden = !found;
    el('waybill-none').hidden = found || (res.candidates && res.candidates.length > 0);
    if (found) {
      el('waybill-number').textContent = res.tracking_number;
      el('waybill-carrier').textContent = [res.carrier, res.carrier_name].filter(Boolean).join(' ') || '—';
      S.play('ok');
    }
    var list = el('waybill-candidates');
    list.textContent = '';
    var cands = (res.candidates || []).filter(function (c) { return c.tracking_number !== res.tracking_number; });
    el('waybill-candidates-box').hidden = cands.length === 0;
    cands.forEach(function (c) {
      var li = S.make('li');
      var b = S.make('button', 'btn', c.tracking_number + (c.carriers && c.carriers.length ? '  ' + c.carriers.join('/') : ''));
      b.type = 'button';
      b.addEventListener('click', function () {
        confirm(c.tracking_number, (c.carriers && c.carriers.length === 1) ? c.carriers[0] : null, 'candidate');
      });
      li.appendChild(b);
      list.appendChild(li);
    });
    drawRegion(res.region);
  }

  function drawRegion(quad) {
    var svg = el('waybill-overlay'), img = el('waybill-img');
    svg.textContent = '';
    if (!quad || !quad.length) return;
    function draw() {
      svg.setAttribute('viewBox', '0 0 ' + img.naturalWidth + ' ' + img.naturalHeight);
      svg.setAttribute('preserveAspectRatio', 'none');
      var poly = document.createElementNS('http://www.w3.org/2000/svg', 'polygon');
      poly.setAttribute('points', quad.map(function (p) { return p[0] + ',' + p[1]; }).join(' '));
      svg.appendChild(poly);
    }
    if (img.complete && img.naturalWidth) draw(); else img.addEventListener('load', draw, { once: true });
  }

  el('waybill-confirm').addEventListener('click', function () {
    if (current && current.tracking_number) confirm(current.tracking_number, current.carrier, 'photo');
  });
  el('waybill-manual-submit').addEventListener('click', function () {
    var number = el('waybill-manual').value.trim().toUpperCase().replace(/\s+/g, '');
    if (number) confirm(number, null, 'manual');
  });
  el('waybill-manual').addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter') { ev.preventDefault(); el('waybill-manual-submit').click(); }
  });

  /* The person's choice. With the waybill reader's capture id it is sent to its confirm
   * endpoint; without one (the decode fallback) it is only shown here. */
  function confirm(number, carrier, how) {
    var body = { tracking_number: number, carrier: carrier, order_id: orderId() || null, how: how };
    var done = function () {
      el('waybill-done').hidden = false;
      el('waybill-done').textContent = t('waybill_confirmed', { number: number + (carrier ? ' ' + carrier : '') });
      S.play('ok');
      S.record('waybill_confirmed', body);
    };
    if (S.alarm.isUp()) return; // nothing is confirmed while an alarm of this station waits
    var id = current && (current.capture_id || current.waybill_id);
    if (!id) { done(); return; }
    S.api('POST', '/api/v1/waybills/' + encodeURIComponent(id) + '/confirm', body).then(function (r) {
      if (r.ok || r.status === 404) done();
      else el('waybill-status').textContent = t('waybill_failed', { message: r.body.message || r.status });
    }, function (e) { el('waybill-status').textContent = t('waybill_failed', { message: e.message || e }); });
  }
})();
