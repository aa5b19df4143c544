"""Marketplace: listings, reviews, subscriptions, revenue (built by the marketplace issue)."""
