"""Running the product: the queue seam, the job body, progress, schedules, alerts, health."""
