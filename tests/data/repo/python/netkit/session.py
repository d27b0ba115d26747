"""A tiny HTTP session that keeps cookies and default headers."""

from urllib.request import Request, urlopen


class Session:
    def __init__(self, base_url, headers=None):
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.cookies = {}

    def send(self, method, path, body=None):
        """Send a request with the session's headers and stored cookies."""
        headers = dict(self.headers)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = Request(self.base_url + path, data=body, headers=headers, method=method)
        with urlopen(request) as response:
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, value = header.split(";")[0].partition("=")
                self.cookies[name.strip()] = value.strip()
            return response.read()
