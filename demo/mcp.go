package demo

import (
	"context"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Name and Version identify the demo's MCP server.
const (
	Name    = "m2m-ssh-demo"
	Version = "1.0.0"
)

type echoArgs struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

type timeArgs struct {
	Zone string `json:"zone,omitempty" jsonschema:"an IANA time zone such as Europe/Paris; the server's own when empty"`
}

// NewMCPServer returns the demo's MCP server, with two tools: echo and
// time.
func NewMCPServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: Name, Version: Version}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Returns its text unchanged."},
		func(_ context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			return text(a.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "time", Description: "Returns the server's current time (RFC 3339)."},
		func(_ context.Context, _ *mcp.CallToolRequest, a timeArgs) (*mcp.CallToolResult, any, error) {
			now := time.Now()
			if a.Zone != "" {
				loc, err := time.LoadLocation(a.Zone)
				if err != nil {
					return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "unknown time zone " + a.Zone}}}, nil, nil
				}
				now = now.In(loc)
			}
			return text(now.Format(time.RFC3339)), nil, nil
		})
	return s
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
