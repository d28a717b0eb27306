/**
 * The status page's HTML and styles, served from memory at `/ui`. Scripts come from `/ui/assets/` (src/ui).
 * Every box that live data fills has a fixed size or a reserved line, so updates do not move the layout.
 */
export function pageHtml(options: { keysRequired: boolean }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>edge-infer status</title>
<style>${STYLES}</style>
<script type="module" src="/ui/assets/main.js"></script>
</head>
<body data-keys="${options.keysRequired ? 'required' : 'open'}">
<header>
  <h1>edge-infer</h1>
  <p id="runtime" class="muted">&nbsp;</p>
  <p id="stream" role="status" class="muted">&nbsp;</p>
</header>
<main>
  <section id="login" hidden aria-labelledby="login-title">
    <h2 id="login-title">Sign in</h2>
    <form id="login-form">
      <label for="key">Scoring key</label>
      <input id="key" name="key" type="password" autocomplete="current-password" required>
      <button type="submit">Sign in</button>
      <p id="login-error" role="alert" class="error"></p>
    </form>
    <p class="muted">The key stays in this browser tab (session storage) and goes only in request headers.</p>
  </section>
  <p id="open-note" hidden class="notice">This endpoint is open: no scoring keys are configured, so anyone who can reach this port can score and switch models.</p>
  <div id="dashboard" hidden>
    <section aria-labelledby="hub-title">
      <h2 id="hub-title">Hub link</h2>
      <dl id="hub" class="facts"></dl>
    </section>
    <section aria-labelledby="models-title">
      <h2 id="models-title">Models</h2>
      <div id="models" class="cards"></div>
    </section>
    <section aria-labelledby="cameras-title">
      <h2 id="cameras-title">Cameras</h2>
      <p id="no-cameras" class="muted">No cameras are configured.</p>
      <div id="cameras" class="cards"></div>
    </section>
    <section aria-labelledby="try-title">
      <h2 id="try-title">Try it</h2>
      <label id="drop" class="drop" for="try-file">
        <span>Drop an image here, or choose one: it goes to <code>POST /score</code>.</span>
        <input id="try-file" type="file" accept="image/jpeg,image/png,image/webp">
      </label>
      <p id="try-summary" role="status" class="line">&nbsp;</p>
      <canvas id="try-canvas" width="640" height="360" aria-label="The image with what the model found drawn on it"></canvas>
    </section>
    <section id="recent" aria-labelledby="recent-title">
      <h2 id="recent-title">Recent results and errors</h2>
      <div class="recent" tabindex="0" aria-label="Recent results and errors, newest first">
        <table>
          <thead><tr><th scope="col">Time</th><th scope="col">Source</th><th scope="col">Model</th><th scope="col">Version</th><th scope="col">Latency</th><th scope="col">Result</th></tr></thead>
          <tbody id="recent-rows"></tbody>
        </table>
        <p id="no-recent" class="muted">Nothing scored since the module started.</p>
      </div>
    </section>
  </div>
</main>
</body>
</html>
`;
}

const STYLES = `
:root { color-scheme: light dark; --ok: #1b7f3b; --bad: #b3261e; --warn: #8a5a00; --line: #8884; font: 16px/1.4 system-ui, sans-serif; }
body { margin: 0 auto; max-width: 72rem; padding: 0 1rem 2rem; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0 1rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.4rem; margin: .6rem 0; }
h2 { font-size: 1.15rem; margin: 1.2rem 0 .5rem; }
h3 { font-size: 1rem; margin: 0 0 .4rem; display: flex; justify-content: space-between; gap: .5rem; }
.muted { opacity: .75; margin: .2rem 0; }
.line { min-height: 1.4em; margin: .3rem 0; }
.error { color: var(--bad); min-height: 1.4em; }
.notice { border-left: 4px solid var(--warn); padding: .4rem .8rem; }
[hidden] { display: none !important; }
#dashboard { display: grid; grid-template-columns: minmax(0, 1fr); column-gap: 1.5rem; }
@media (min-width: 62rem) { #dashboard { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 20rem), 1fr)); gap: .8rem; }
.card { border: 1px solid var(--line); border-radius: .4rem; padding: .7rem; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem .8rem; margin: 0; }
.facts dt { opacity: .75; }
.facts dd { margin: 0; overflow-wrap: anywhere; min-height: 1.4em; }
.badge { font-size: .85rem; padding: 0 .45rem; border-radius: 1rem; border: 1px solid currentColor; white-space: nowrap; }
.badge.good { color: var(--ok); } .badge.bad { color: var(--bad); } .badge.busy { color: var(--warn); }
progress { width: 100%; height: .8rem; }
.versions { list-style: none; padding: 0; margin: .4rem 0 0; display: flex; flex-wrap: wrap; align-items: center; gap: .4rem; min-height: 2.4rem; }
button { font: inherit; padding: .35rem .8rem; min-height: 2.4rem; cursor: pointer; }
button:focus-visible, input:focus-visible, .drop:focus-within { outline: 3px solid #3b82f6; outline-offset: 2px; }
.frame { width: 100%; aspect-ratio: 16 / 9; object-fit: contain; background: #0002; display: block; }
.drop { display: block; border: 2px dashed var(--line); border-radius: .4rem; padding: 1rem; text-align: center; cursor: pointer; }
.drop.over { border-color: #3b82f6; }
.drop input { display: block; margin: .6rem auto 0; max-width: 100%; }
#try-canvas { width: 100%; height: auto; aspect-ratio: 16 / 9; object-fit: contain; background: #0002; display: block; }
.rates { margin: .4rem 0 0; }
.rates svg { display: block; width: 100%; height: 4rem; background: #8881; }
.rates path { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; }
.rates path.rate { stroke: var(--ok); } .rates path.latency { stroke: #3b82f6; stroke-dasharray: 4 3; }
.rates figcaption { min-height: 2.8em; font-size: .85rem; }
.key { margin-right: .6rem; white-space: nowrap; }
.key::before { content: ""; display: inline-block; width: 1.2em; margin-right: .3em; vertical-align: middle; border-top: 2px solid var(--ok); }
.key.latency::before { border-top: 2px dashed #3b82f6; }
#recent { grid-column: 1 / -1; }
.recent { height: 16rem; overflow: auto; border: 1px solid var(--line); border-radius: .4rem; }
.recent table { width: 100%; border-collapse: collapse; font-size: .9rem; }
.recent th { position: sticky; top: 0; background: Canvas; text-align: left; }
.recent th, .recent td { padding: .2rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
.recent td:last-child { white-space: normal; overflow-wrap: anywhere; min-width: 12rem; }
.recent td.number { text-align: right; }
.recent p { margin: .5rem; }
/* On a phone each entry is a wrapped line, the result included, rather than a table wider than the screen. */
@media (max-width: 40rem) {
  .recent thead { display: none; }
  .recent tr { display: block; padding: .3rem .5rem; border-bottom: 1px solid var(--line); }
  .recent td, .recent td:last-child { display: inline; padding: 0 .4rem 0 0; border: 0; white-space: normal; min-width: 0; }
  .recent td:last-child { display: block; }
}
input[type=password] { font: inherit; padding: .35rem; width: min(100%, 22rem); display: block; margin: .3rem 0 .6rem; }
`;
