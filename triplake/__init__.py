"""triplake: an event-driven data lake for vehicle trips."""
