"""Pure: typed models and the rules over them (no network, no subprocess).

Features: runs, cost, aws, nodes, project, clusters."""
