#!/usr/bin/env python3
"""A sample flowgate `command` function.

flowgate writes the task's event as JSON on stdin and reads the result as JSON from stdout.
Errors are reported as {"errorType": ..., "errorMessage": ...} on stdout (with any exit status)
or by a non-zero exit, whose message is taken from the last lines of stderr.

Bind it with:

    [[functions]]
    name = "greet"
    invoker = "command"
    command = "examples/functions/greet.py"
    timeout_seconds = 10
"""
import json
import os
import sys


def main():
    event = json.load(sys.stdin)
    name = event.get("name") if isinstance(event, dict) else None
    if not name:
        print(json.dumps({"errorType": "ValidationError", "errorMessage": "name is required"}))
        return
    print(json.dumps({
        "message": f"hello {name}",
        "execution": os.environ["FLOWGATE_EXECUTION_NAME"],
        "state": os.environ["FLOWGATE_STATE"],
        "attempt": int(os.environ["FLOWGATE_ATTEMPT"]),
    }))


if __name__ == "__main__":
    main()
