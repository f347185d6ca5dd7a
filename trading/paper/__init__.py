"""The paper venue: a sans-I/O matcher of accepted orders against real trades."""
