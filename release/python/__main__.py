"""Runs the m2m-ssh binary shipped in this wheel with this process's
arguments, stdio and environment. On POSIX it replaces this process
(exec), so the MCP host's signals and the exit status reach it directly.
"""

import os
import sys


def binary():
    name = "m2m-ssh.exe" if sys.platform == "win32" else "m2m-ssh"
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", name)


def installer():
    """The runner whose cache this environment lives in, if any: uvx and
    'pipx run' keep throwaway environments there, so 'm2m-ssh config'
    should print their command rather than a path in the cache."""
    prefix = sys.prefix.replace(os.sep, "/").lower()
    if "/uv/" in prefix and ("/archive-v" in prefix or "/builds-v" in prefix):
        return "uvx"
    if "/pipx/.cache/" in prefix or "/cache/pipx/" in prefix or "/caches/pipx/" in prefix:
        return "pipx"
    return ""


def main():
    exe = binary()
    runner = installer()
    if runner and not os.environ.get("M2M_SSH_INSTALLER"):
        os.environ["M2M_SSH_INSTALLER"] = runner
    args = [exe] + sys.argv[1:]
    if sys.platform == "win32":
        # No exec on Windows: wait for the child, leaving Ctrl-C to it.
        import signal
        import subprocess

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(subprocess.call(args))
    os.execv(exe, args)


if __name__ == "__main__":
    main()
