"""The worker of each job: reads its JSON config, writes its JSON output (seed 004's example worker)."""

import json
import sys

config_path, output_path = sys.argv[1], sys.argv[2]
with open(config_path) as handle:
    config = json.load(handle)
x, y = config["x"], config["y"]
with open(output_path, "w") as handle:
    json.dump({"x+y": x + y, "x*y": x * y}, handle)
