"""trainprove generators on diffusers: the paper's four text-to-image models as the defender's generator.

`plugin` registers them; `backends` says what each loads and how it samples; `generator` is the
`Generator` trainprove calls; `recipes` holds the paper's prompt recipes; `tiny` builds tiny random-weight
pipelines for tests and benchmarks.
"""

__version__ = "0.1.0"
