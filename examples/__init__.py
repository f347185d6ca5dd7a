"""Example files (ticks for ``mdp candles``) and example bots (``ma_cross.py``)."""
