"""Serverless burst capacity: the clouds' serverless pods as a region's second kind of room.

`models` is the regions file's `serverless` block (validated, per-kind defaults from
`kinds`), `sizing` rounds a pod's requests to the sizes a cloud bills, `cost` prices them,
`steering` says what a pod must carry to land there, and `plan` puts the three together
as the `BurstPlan` the Job builder applies.
"""
