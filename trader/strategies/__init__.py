"""Strategies: services (writes), selectors (reads), strike resolution, payoff, the wizard."""
