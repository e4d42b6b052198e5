//! Cron triggers: fires each due time of every scheduled flow exactly once (claimed in storage).
