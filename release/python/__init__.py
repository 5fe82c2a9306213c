"""m2m-ssh: bridge an MCP host's stdio session to an MCP server over SSH.

The wheel carries the Go binary in m2m_ssh/bin; the m2m-ssh command
(m2m_ssh.__main__) runs it.
"""
