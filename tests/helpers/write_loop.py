"""Run by the SIGKILL test: writes index versions alternating between two known contents
(sizes A and B articles) until it is killed, saying "wrote N" after each write."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from indexer import store  # noqa: E402
from tests.helpers import synthetic  # noqa: E402

index_path = Path(sys.argv[1])
sizes = [int(x) for x in sys.argv[2].split(",")]
contents = [synthetic.content(n, seed=i) for i, n in enumerate(sizes)]
print("ready", flush=True)
i = 0
while True:
    store.write_index(index_path, contents[i % len(contents)], synthetic.settings())
    print(f"wrote {sizes[i % len(sizes)]}", flush=True)
    i += 1
