"""Order lines: reconciled per linked order (:mod:`.process`, :mod:`.reconcile`),
written to webCRM in shared PATCH batches (:mod:`.queue`), and carried with new orders
(:mod:`.travel`)."""
