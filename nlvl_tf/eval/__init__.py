"""From model outputs to ranked moments and metrics: span decoding, metrics, evaluation files, baselines, figures."""
