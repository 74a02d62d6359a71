"""The application layer: the ``ionto`` command line and the demo.

The only code that wires the stages together: :mod:`emulator` writes exports,
:mod:`device_import` loads them into the store, :mod:`ionto_analytics` answers from the
store. Nothing below this package imports it.
"""
