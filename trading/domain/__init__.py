"""The pure trading domain: order requests and the order state machine (:mod:`.orders`),
instruments (:mod:`.instruments`), spot accounts (:mod:`.accounts`) and pre-trade risk
(:mod:`.risk`). No I/O and no clock: every input is an argument, every change an event of
:mod:`core.trading_events`."""
