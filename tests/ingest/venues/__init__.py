"""Tests of the live venue protocols and the runtime that drives them."""
