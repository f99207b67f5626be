/* Waybill capture: a photo from the phone or PDA camera -> tracking number and carrier, shown
 * with the region of the photo it was read from; one tap confirms, a candidate can be picked,
 * typing is the last resort.
 *
 * Two forms (edge/templates/waybill.html): the packer's, and a signed-in distributor's, which
 * has exactly three fields (its order from a list of its own orders, the tracking number, the
 * shipping photo). A number that breaks the distributor's rule is marked red with the reasons
 * and the person is asked to confirm it as an exception (recorded on the edge with who).
 *
 * Every message is in the page's language: the edge's error codes map to catalogue words
 * (err_<code>); its English message is never shown.
 *
 * It uses POST /api/v1/waybills (the waybill reader: barcode, then text) when the edge has it;
 * an edge without it answers 404 and the page falls back to POST /api/v1/decode (barcodes
 * only: every decoded symbol becomes a candidate, no carrier). */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el;
  var photo = el('waybill-photo');
  var distributor = !!el('waybill-distributor');
  var current = null; // {capture_id?, tracking_number, carrier, source_endpoint: 'waybills'|'decode'}
  var pending = null; // the confirmation a rule problem holds: {number, carrier, how}
  var filledNumber = ''; // what the read put in the distributor's number field

  function orderId() { return el('waybill-order').value.trim(); }
  function status(text) { el('waybill-status').textContent = text || ''; }

  /* An answer of the edge in the page's words: its error code, never its English message. */
  function errorText(r) {
    var b = (r && r.body) || {};
    var key = 'err_' + (b.error || '');
    if (b.error && S.config.messages[key] !== undefined) {
      return t(key, { other: b.other_order_id || '', order: b.order_id || '' });
    }
    return t('err_other', { status: (r && r.status) || '?' });
  }
  function problemText(p) {
    if (p.code === 'length') {
      return t(p.min === p.max ? 'rule_length' : 'rule_length_range', { min: p.min, max: p.max, got: p.got });
    }
    if (p.code === 'min_letters' || p.code === 'min_digits') return t('rule_' + p.code, { n: p.n });
    if (p.code === 'carriers') return t('rule_carriers', { carriers: (p.carriers || []).join('/') });
    return t('rule_' + p.code);
  }

  // --- the red mark and the exception -------------------------------------------------------

  function numberBox() { return distributor ? el('waybill-manual') : el('waybill-number'); }
  function showRule(problems, ask) {
    var reasons = problems.map(problemText).join(';');
    el('waybill-rule').textContent = t('waybill_rule_broken', { reasons: reasons });
    el('waybill-rule').hidden = false;
    el('waybill-exception').hidden = !ask;
    if (el('waybill-rule-box')) el('waybill-rule-box').hidden = false;
    var box = numberBox();
    if (box) box.classList.add('rule-red');
    if (!distributor && ask && pending && pending.how === 'manual') el('waybill-manual').classList.add('rule-red');
    S.record('rule_broken', { problems: problems, ask: ask });
  }
  function clearRule() {
    pending = null;
    el('waybill-rule').hidden = true;
    el('waybill-rule').textContent = '';
    el('waybill-exception').hidden = true;
    if (el('waybill-rule-box')) el('waybill-rule-box').hidden = true;
    ['waybill-manual', 'waybill-number'].forEach(function (id) { if (el(id)) el(id).classList.remove('rule-red'); });
  }
  el('waybill-exception').addEventListener('click', function () {
    if (pending) confirm(pending.number, pending.carrier, pending.how, true);
  });

  // --- the order: a distributor picks one of its own; a packer may get the open one ---------

  if (distributor) {
    // a distributor is no part of the station's packing: its alarms (which only a packer or a
    // supervisor may acknowledge) do not cover this form
    S.alarm.relevant = function () { return false; };
    S.api('GET', '/api/v1/waybills/orders').then(function (r) {
      if (!r.ok) { status(errorText(r)); return; }
      var select = el('waybill-order');
      r.body.orders.forEach(function (o) {
        var opt = S.make('option', null, o.order_id + (o.tracking_number ? '  ' + o.tracking_number : '') +
                         (o.frozen ? ' ' + t('waybill_frozen_option') : ''));
        opt.value = o.order_id;
        opt.disabled = !!o.frozen; // a frozen order takes no waybill
        select.appendChild(opt);
      });
      if (!r.body.orders.length) status(t('waybill_no_orders'));
    }, function () { status(t('err_network')); });
    el('waybill-order').addEventListener('change', function () {
      current = null; clearRule(); el('waybill-done').hidden = true;
    });
    el('waybill-manual').addEventListener('input', clearRule);
  } else {
    // the station's open order, unless it is frozen: a frozen order takes no waybill
    S.on('state', function (s) {
      var o = s.open_order;
      if (!el('waybill-order').value && o && !o.freeze) el('waybill-order').value = o.order_id;
    });
  }

  // --- the photo ----------------------------------------------------------------------------

  photo.addEventListener('change', function () {
    var file = photo.files && photo.files[0];
    if (!file) return;
    photo.value = ''; // the same photo may be taken again
    if (distributor && !orderId()) { status(t('err_order_required')); return; }
    el('waybill-done').hidden = true;
    clearRule();
    if (el('waybill-result')) {
      el('waybill-result').hidden = false;
      el('waybill-found').hidden = true;
      el('waybill-none').hidden = true;
      el('waybill-candidates-box').hidden = true;
    }
    status(t('waybill_reading'));
    var img = el('waybill-img');
    if (img.src && img.src.indexOf('blob:') === 0) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(file);
    el('waybill-figure').hidden = false;
    el('waybill-overlay').textContent = '';
    read(file);
  });

  function form(file) {
    var f = new FormData();
    f.append('image', file, file.name || 'photo.jpg');
    if (orderId()) f.append('order_id', orderId());
    return f;
  }

  function read(file) {
    current = null;
    S.api('POST', '/api/v1/waybills', form(file), 30000).then(function (r) {
      // an edge without the waybill reader: Flask's own 404 for an unknown URL
      if (r.status === 404 && r.body.error === 'not_found') {
        return S.api('POST', '/api/v1/decode', form(file), 30000).then(function (d) {
          if (!d.ok) return failed(d);
          show(fromDecode(d.body));
        });
      }
      if (!r.ok) return failed(r);
      r.body.source_endpoint = 'waybills';
      show(r.body);
    }, function () { status(t('waybill_failed', { message: t('err_network') })); });
  }
  function failed(r) {
    status(t('waybill_failed', { message: errorText(r) }));
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
    status(res.source_endpoint === 'decode' ? t('waybill_decode_only') : '');
    drawRegion(res.region);
    if (res.attached) { // certain, nothing in doubt: it is on the order already
      done('waybill_attached', res.tracking_number, res.carrier);
      current = null;
    }
    if (distributor) {
      var box = el('waybill-manual');
      if (res.tracking_number && (!box.value || box.value === filledNumber)) {
        box.value = filledNumber = res.tracking_number;
      }
      if (res.rule_problems && res.rule_problems.length && !res.attached) {
        pending = { number: res.tracking_number, carrier: res.carrier, how: 'photo' };
        showRule(res.rule_problems, false); // asked when the person submits it
      }
      return;
    }
    var found = !!res.tracking_number;
    el('waybill-found').hidden = !found;
    el('waybill-none').hidden = found || (res.candidates && res.candidates.length > 0);
    if (found) {
      el('waybill-number').textContent = res.tracking_number;
      el('waybill-carrier').textContent = [res.carrier, res.carrier_name].filter(Boolean).join(' ') || '—';
      el('waybill-confirm').hidden = !!res.attached;
      S.play('ok');
      if (res.rule_problems && res.rule_problems.length && !res.attached) {
        pending = { number: res.tracking_number, carrier: res.carrier, how: 'photo' };
        showRule(res.rule_problems, true);
      }
    }
    var list = el('waybill-candidates');
    list.textContent = '';
    var cands = (res.candidates || []).filter(function (c) { return c.tracking_number !== res.tracking_number; });
    el('waybill-candidates-box').hidden = cands.length === 0 || !!res.attached;
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

  function typed() { return el('waybill-manual').value.trim().toUpperCase().replace(/\s+/g, ''); }
  if (distributor) {
    el('waybill-submit').addEventListener('click', function () {
      var number = typed();
      if (!orderId()) { status(t('err_order_required')); return; }
      if (!current || !current.capture_id) { status(t('waybill_need_photo')); return; }
      if (!number) { status(t('err_invalid_tracking_number')); return; }
      var fromPhoto = number === current.tracking_number;
      confirm(number, fromPhoto ? current.carrier : null, fromPhoto ? 'photo' : 'manual');
    });
  } else {
    el('waybill-confirm').addEventListener('click', function () {
      if (current && current.tracking_number) confirm(current.tracking_number, current.carrier, 'photo');
    });
    el('waybill-manual-submit').addEventListener('click', function () {
      var number = typed();
      if (number) confirm(number, null, 'manual');
    });
  }
  el('waybill-manual').addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      el(distributor ? 'waybill-submit' : 'waybill-manual-submit').click();
    }
  });

  function done(key, number, carrier) {
    clearRule();
    el('waybill-done').hidden = false;
    el('waybill-done').textContent = t(key, { number: number + (carrier ? ' ' + carrier : '') });
    status('');
    S.play('ok');
  }

  /* The person's choice. With the waybill reader's capture id it is sent to its confirm
   * endpoint (who confirmed is the signed-in person: the edge takes it from the session);
   * without one (the decode fallback) it is only shown here. `exception`: the person confirmed
   * a number that breaks the distributor's rule. */
  function confirm(number, carrier, how, exception) {
    var body = { tracking_number: number, carrier: carrier, order_id: orderId() || null, how: how };
    if (exception) body.accept_rule_exception = true;
    var finish = function (out) {
      done(exception ? 'waybill_exception_done' : 'waybill_confirmed', number, (out && out.carrier) || carrier);
      S.record('waybill_confirmed', body);
      current = null;
    };
    if (S.alarm.isUp()) return; // nothing is confirmed while an alarm of this station waits
    var id = current && (current.capture_id || current.waybill_id);
    if (!id) { // only the decode fallback has nothing to send it to
      if (current && current.source_endpoint === 'decode') finish(null);
      else status(t('waybill_need_photo'));
      return;
    }
    S.api('POST', '/api/v1/waybills/' + encodeURIComponent(id) + '/confirm', body).then(function (r) {
      if (r.ok) { finish(r.body); return; }
      if (r.status === 422 && r.body.error === 'rule_failed' && !exception) {
        pending = { number: number, carrier: carrier, how: how };
        showRule(r.body.problems || [], true);
        status('');
        S.play('error');
        return;
      }
      status(t('waybill_confirm_failed', { message: errorText(r) }));
      if (r.status === 409) S.play('error');
    }, function () { status(t('waybill_confirm_failed', { message: t('err_network') })); });
  }
})();
