"""Ako's benchmark: real homeservers, the bot and a do-nothing echo bot, figures as ratios (issue 7)."""
