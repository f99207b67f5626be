"""The domain rules: what a scan means, when an order is frozen, what a label holds.

Plain functions and dataclasses: nothing here imports Flask, SQLite, printers or OpenCV.
"""
