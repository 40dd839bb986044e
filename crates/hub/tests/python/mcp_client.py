"""An MCP client made with the official MCP Python SDK (`mcp` on PyPI), for tests/mcp.rs.

Reads {"url", "token", "calls": [{"tool", "args"}], "read": [uri]} on stdin, connects to the
hub's Streamable HTTP endpoint with the token as a bearer, initializes, lists the tools and
resources, makes the calls and reads the resources, and prints one JSON object: what the
server said, or {"error": ...} when the session could not be opened.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


def text_of(result):
    return "".join(getattr(block, "text", "") for block in result.content)


async def run(spec):
    headers = {"Authorization": f"Bearer {spec['token']}"}
    out = {}
    http = create_mcp_http_client(headers=headers)
    async with http:
        async with streamable_http_client(spec["url"], http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["protocol"] = str(init.protocol_version)
                out["server"] = init.server_info.name
                tools = await session.list_tools()
                out["tools"] = sorted(tool.name for tool in tools.tools)
                out["results"] = []
                for call in spec.get("calls", []):
                    result = await session.call_tool(call["tool"], call.get("args") or {})
                    out["results"].append(
                        {
                            "tool": call["tool"],
                            "is_error": bool(result.is_error),
                            "structured": result.structured_content,
                            "text": text_of(result),
                        }
                    )
                if "read" in spec:
                    listed = await session.list_resources()
                    out["resources"] = sorted(str(r.uri) for r in listed.resources)
                    out["read"] = {}
                    for uri in spec["read"]:
                        contents = await session.read_resource(uri)
                        out["read"][uri] = [json.loads(c.text) for c in contents.contents]
    return out


def main():
    spec = json.load(sys.stdin)
    try:
        out = asyncio.run(run(spec))
    except BaseException as err:  # noqa: BLE001 - the test asserts on the refusal
        causes = []
        stack = [err]
        while stack:
            e = stack.pop()
            causes.append(f"{type(e).__name__}: {e}")
            stack.extend(getattr(e, "exceptions", []) or [])
            if e.__cause__ is not None:
                stack.append(e.__cause__)
        out = {"error": " | ".join(causes)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
