"""What a freeze does on the device, in one place (docs/freeze.md).

- ``apply``: a hub freeze or unfreeze command applied in the sync transaction (version rules);
- ``effects``: after that commit: cancel the order's labels, raise the alarm, ack to the hub;
- ``local``: a freeze or unfreeze made on this device (``scanedge freeze``);
- ``interceptions``: the record of an action a freeze refused (scan, print, waybill, pick);
- ``status``: the offline policy, "freeze status unknown" while the hub is silent.

The rules themselves are pure (edge/domain/packing.py: ``Freeze``, ``FREEZE_REASONS``, the scan
verdicts; edge/domain/interception_report.py); the rows are edge/store/orders.py.
"""
