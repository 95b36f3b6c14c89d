/* weightinit /docs: Swagger UI (the flask-swagger-ui package's bundle), set up so that no answer can
 * lock up the page.
 *
 * Swagger UI pretty-prints a JSON answer and highlights it with one DOM node per token: a 2.4 MB
 * answer froze the tab for minutes. Here:
 * - an answer over SHOW_MAX characters is shown cut, as it came (not re-indented, not highlighted),
 *   with a link that saves all of it; its parsed copies are dropped before they reach Swagger UI's
 *   store (which would turn every number into an immutable object);
 * - a text over HIGHLIGHT_MAX characters (an answer or an example, as Swagger UI indents it) is plain
 *   text, not highlighted: highlighting costs about one DOM node per token, and the default answers
 *   of /v1/diagnose (42,000 characters indented) and /v1/schemes (29,000) took most of the time from
 *   Execute to the rendered answer;
 * - a binary answer (Content-Disposition: attachment) is a download link: Swagger UI does that itself;
 * - a request body that names its `format` is sent with `Accept: *\/*`: the page would otherwise send
 *   the media type picked in its list (application/json by default), and a format that Accept
 *   excludes is a 406.
 */
(function () {
  "use strict";
  var SHOW_MAX = 100000;
  var HIGHLIGHT_MAX = 16000;

  function cutAnswer() {
    var saved = { text: null, url: null };

    function savedUrl(text, type) {
      if (saved.text !== text) {
        if (saved.url) URL.revokeObjectURL(saved.url);
        saved = { text: text, url: URL.createObjectURL(new Blob([text], { type: type || "text/plain" })) };
      }
      return saved.url;
    }

    return {
      wrapComponents: {
        responseBody: function (Original, system) {
          var React = system.React;
          return function (props) {
            var text = props.content;
            if (typeof text !== "string" || text.length <= SHOW_MAX) return React.createElement(Original, props);
            var Plain = system.getComponent("PlainTextViewer");
            var ext = /json/i.test(props.contentType || "") ? "json" : /yaml/i.test(props.contentType || "") ? "yaml" : "txt";
            return React.createElement("div", { className: "weightinit-cut" },
              React.createElement("p", null,
                "This answer has " + text.length.toLocaleString("en") + " characters: the first " +
                SHOW_MAX.toLocaleString("en") + " are shown as they came. ",
                React.createElement("a", { href: savedUrl(text, props.contentType), download: "response." + ext },
                  "Download all of it")),
              React.createElement(Plain, null, text.slice(0, SHOW_MAX) + "\n[... cut]"));
          };
        },
        SyntaxHighlighter: function (Original, system) {
          var React = system.React;
          return function (props) {
            var text = props.children;
            if (typeof text !== "string" || text.length <= HIGHLIGHT_MAX) return React.createElement(Original, props);
            return React.createElement(system.getComponent("PlainTextViewer"), { className: props.className }, text);
          };
        }
      }
    };
  }

  function dropParsedCopies(res) {
    if (typeof res.text === "string" && res.text.length > SHOW_MAX) {
      delete res.body;
      delete res.obj;
    }
    return res;
  }

  function acceptTheBodysFormat(req) {
    if (typeof req.body !== "string" || req.body.indexOf("\"format\"") < 0) return req;
    var doc;
    try { doc = JSON.parse(req.body); } catch (e) { return req; }
    if (doc && typeof doc === "object" && typeof doc.format === "string") {
      Object.keys(req.headers).forEach(function (k) { if (k.toLowerCase() === "accept") delete req.headers[k]; });
      req.headers.Accept = "*/*";
    }
    return req;
  }

  window.onload = function () {
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      displayRequestDuration: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      plugins: [SwaggerUIBundle.plugins.DownloadUrl, cutAnswer],
      layout: "StandaloneLayout",
      requestInterceptor: acceptTheBodysFormat,
      responseInterceptor: dropParsedCopies
    });
  };
})();
