"""Experiments on one method, kept out of the library they study: each module is a command
(`python -m lmkcore.experiments.<name>`) that trains and scores through `lmkcore.train` and
`lmkcore.eval`, and writes its own tables under `reports/`.

`choices`: the store copies that choice studies train and score on (fit images only, never the scored split).
AutoLink's: `sweep` (which of its choices matter at CPU scale; `CHOICES`), `edge_oracle` (does its
decoder use the edge map?), `keypoint_oracle` (does it keep the true skeleton when started on the
joints?), and `oracle_report` (what the two oracles share: arguments, JSON rows, markdown table).

Nothing else in `lmkcore` imports this package (`tests/test_layers.py`).
"""
