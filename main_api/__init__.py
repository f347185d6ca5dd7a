"""The main API: what users keep (profile, watchlists, price alerts, notifications) and the
alert evaluator that fires their alerts on the market stream."""
