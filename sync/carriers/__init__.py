"""Carrier e-waybill adapters (电子面单): one interface (base.py), one module per carrier (sf.py,
zto.py, jt.py), each following the carrier's published request format and signature, and the
simulators that answer like them on 127.0.0.1 (sim.py). docs/carriers.md."""
