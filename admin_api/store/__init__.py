"""The unit of work (`unit_of_work.Store`), the change log every write appends to
(`outbox`), and the wake-up of Watch streams after a commit (`notifier`)."""
