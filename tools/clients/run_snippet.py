"""Runs one Python block of docs/serving.md against a server and prints what
it left in `texts` and `embeddings` as JSON into OUT.json (clients print to
stdout freely), for serve's client test:

    run_snippet.py PORT OUT.json < block.py

The block is the page's text with "8080" replaced by PORT, so what the test
runs is what a reader copies.
"""

import json
import sys


def main():
    port, out = sys.argv[1], sys.argv[2]
    source = sys.stdin.read().replace("8080", port)
    scope = {"__name__": "__snippet__"}
    exec(compile(source, "docs/serving.md", "exec"), scope)
    texts = scope.get("texts")
    embeddings = scope.get("embeddings")
    if texts is None or embeddings is None:
        sys.exit("the block must leave `texts` and `embeddings`")
    embeddings = [[float(x) for x in row] for row in embeddings]
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"texts": list(texts), "embeddings": embeddings}, f)


if __name__ == "__main__":
    main()
