/* The supervisor's 生效倒计时 card: cancel, address-change and note commands of this site against
 * their countdown, read from the hub through the device (GET /api/v1/countdowns), ticking between
 * reads; a tripped fuse (熔断) is red with the devices that were not in time. With the hub out of
 * reach: what this device applied and whether the hub has its acknowledgement. */
(function () {
  'use strict';
  var S = window.ScanEdge, t = S.t, el = S.el, make = S.make;
  var rows = [], readAt = 0, timer = null, seenTripped = {};

  function command(r) {
    var key = 'cd_cmd_' + (r.kind === 'freeze' ? r.reason : r.kind);
    var word = t(key);
    return word === key ? (r.reason || r.kind) : word;
  }
  function left(r) {
    if (r.state !== 'running') return t('cd_state_' + r.state);
    var s = r.remaining_s - (performance.now() - readAt) / 1000;
    return s > 0 ? s.toFixed(1) + ' s' : t('cd_checking');
  }
  function render(body) {
    var list = el('cd-rows');
    list.textContent = '';
    var problem = body.hub_error;
    el('cd-note').hidden = !problem;
    el('cd-note').textContent = problem ? t('cd_hub_down', { message: problem.message }) : '';
    var tripped = 0, fresh = false;
    rows.forEach(function (r) {
      if (r.state === 'tripped') {
        tripped += 1;
        if (!seenTripped[r.command_id]) { seenTripped[r.command_id] = true; fresh = true; }
      }
      var li = make('li', 'cd-row cd-' + r.state);
      li.dataset.commandId = r.command_id;
      li.appendChild(make('span', 'cd-order', r.order_id + ' · ' + command(r)));
      li.appendChild(make('span', 'cd-left', left(r)));
      li.appendChild(make('span', 'muted', ' ' + t('cd_applied', { applied: r.applied, expected: r.expected })));
      if (r.missing.length) li.appendChild(make('span', 'cd-missing', ' ' + t('cd_missing', { devices: r.missing.join(', ') })));
      if (r.late.length) {
        li.appendChild(make('span', 'muted', ' ' + t('cd_late', { devices: r.late.map(function (l) {
          return l.device_id + ' +' + l.seconds_late + 's'; }).join(', ') })));
      }
      list.appendChild(li);
    });
    if (problem) {
      (body.applied_here || []).forEach(function (a) {
        var li = make('li', 'cd-row');
        li.appendChild(make('span', 'cd-order', a.order_id + ' · ' + command(a)));
        li.appendChild(make('span', 'muted', ' ' + t('cd_applied_here', { at: S.clock(a.applied_at) }) + ' · ' +
                            t(a.acked_at ? 'cd_acked' : 'cd_not_acked')));
        list.appendChild(li);
      });
    }
    if (!list.children.length) list.appendChild(make('li', 'muted', t('cd_none')));
    el('cd-tripped').textContent = tripped;
    el('cd-tripped').classList.toggle('hot', tripped > 0);
    if (fresh) { el('cd-card').classList.add('flash'); S.play('alarm'); }
  }
  function load() {
    clearTimeout(timer);
    S.api('GET', '/api/v1/countdowns').then(function (r) {
      if (!r.ok) return;
      rows = r.body.countdowns || [];
      readAt = performance.now();
      render(r.body);
    }, function () {}).then(function () {
      timer = setTimeout(load, document.hidden ? 15000 : 3000);
    });
  }
  setInterval(function () {  // tick between reads
    Array.prototype.forEach.call(document.querySelectorAll('#cd-rows li[data-command-id]'), function (li, i) {
      if (rows[i]) li.querySelector('.cd-left').textContent = left(rows[i]);
    });
  }, 200);
  ['freeze', 'note', 'note_read', 'alarm'].forEach(function (kind) {
    S.on(kind, function () { clearTimeout(timer); timer = setTimeout(load, 300); });
  });
  load();
})();
