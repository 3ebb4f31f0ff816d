// vitdemo's browser side, installed once per tab by vitdemo/ui/shell.py (st.html with JavaScript).
// Never write an angle bracket followed by a letter or a slash in this file (see registerProperty below).
// 1. The drawing canvas (streamlit-drawable-canvas, inside a shadow root): hide its hover-only toolbar, which
//    is invisible yet catches the touches on the canvas's top edge, and size the canvas to the screen (its
//    column's width, the page's --vd-canvas-max, the window's height); Fabric maps pointers through the CSS
//    scale, so the 280 px bitmap the models read stays the same.
//    A new canvas is laid out without the component's stylesheet until that has loaded into its shadow root
//    (tens of ms; a second or more on a busy device): its drawing surface then sits one canvas height below its
//    place, and a stroke begun there lands on the buttons when it moves up. So a pad's canvas stays hidden
//    (visibility: no strokes either) until its surface is where the canvas belongs.
// 2. The sidebar: collapsed when a page is opened on a narrow screen, on Present, or in a page's present mode
//    (?present=1 in the address: the Race page's).
// 3. Undo, Clear and the earlier drawings' buttons make the server send a new canvas. From the press until it is
//    on the page, the old canvas is dimmed and takes no strokes: one drawn on it meanwhile would vanish with it
//    (on a busy class server that is a second or more). Should no new canvas come (the run failed), the old one
//    takes strokes again once the app has stopped running.
(() => {
  if (window.__vitdemoClient) return;
  window.__vitdemoClient = true;

  const SHADOW_CSS = `
    .dc-toolbar { display: none !important; }
    .dc-root, .dc-scroll { overflow: visible !important; }
    .dc-container, .dc-container .canvas-container, .dc-container canvas {
      width: var(--vd-canvas, 280px) !important; height: var(--vd-canvas, 280px) !important;
    }`;
  try {
    // Registered, the pages' calc()s in --vd-canvas-max compute to pixels that fitCanvas can read. Not an
    // @property rule in the CSS, and "\u003c" for the angle bracket: st.html's sanitizer (DOMPurify) drops a
    // style or script element whose text holds an angle bracket followed by a letter.
    const syntax = "\u003clength>";
    CSS.registerProperty({ name: "--vd-canvas-max", syntax, inherits: true, initialValue: "280px" });
  } catch (e) {
    // registered already, or an old browser: the canvas then keeps 280 px at most
  }
  const pending = document.createElement("style"); // the light DOM's part of "hidden until in place"
  pending.textContent = `.st-key-vd_pad [data-testid="stBidiComponentIsolated"]:not([data-vd-ready]) {
    visibility: hidden; }`;
  document.head.appendChild(pending);
  const NARROW_PX = 1200;
  const PLACE_WAIT_MS = 3000; // a canvas not in place by then is shown anyway // below this the sidebar starts collapsed: tablets, phones, small laptops
  const MIN_CANVAS_PX = 160;

  const px = (style, name, fallback) => {
    const value = parseFloat(style.getPropertyValue(name));
    return Number.isFinite(value) ? value : fallback;
  };

  // The bottom of what sits below the canvas in its column (buttons, thumbnails): it must fit on screen too.
  const spaceBelow = (host) => {
    const column = host.closest('[data-testid="stColumn"]') || host.closest('[data-testid="stVerticalBlock"]');
    const hostBottom = host.getBoundingClientRect().bottom;
    let bottom = hostBottom;
    for (const el of column.querySelectorAll('[data-testid="stElementContainer"]')) {
      const rect = el.getBoundingClientRect();
      if (rect.height > 0 && rect.top >= hostBottom - 1) bottom = Math.max(bottom, rect.bottom);
    }
    return bottom - hostBottom;
  };

  // On a phone the page is one column: the answers come after the canvas, and both must fit on the screen. The
  // room they need (--vd-answer-reserve, set by the page's CSS for narrow screens) is kept whether or not there is
  // an answer yet, so that the canvas does not change size under the first stroke.
  const answersBelow = (host, css) => {
    const answers = document.querySelector(".st-key-vd_answers");
    if (!answers || !host.closest(".st-key-vd_pad")) return 0;
    const stacked = answers.getBoundingClientRect().top >= host.getBoundingClientRect().bottom - 1;
    return stacked ? px(css, "--vd-answer-reserve", 0) : 0;
  };

  let pressed = false; // never resize a canvas under a finger or a pressed mouse: the stroke would bend
  for (const type of ["pointerdown", "touchstart"]) document.addEventListener(type, () => (pressed = true), true);
  for (const type of ["pointerup", "pointercancel", "touchend", "touchcancel"]) {
    document.addEventListener(type, () => (pressed = false), true);
  }

  // The Read page's wide canvas (4:1) keeps its shape and shrinks to its column on a narrow screen, never
  // growing past its own size: it ran past the right edge of a phone or a tablet (seen on the screenshots).
  const WIDE_CSS = `
    .dc-toolbar { display: none !important; }
    .dc-container, .dc-container .canvas-container, .dc-container canvas {
      width: var(--vd-wide-w) !important; height: var(--vd-wide-h) !important;
    }`;
  const fitWide = (host, root) => {
    const lower = root.querySelector("canvas.lower-canvas");
    const w0 = lower ? parseFloat(lower.style.width) : NaN, h0 = lower ? parseFloat(lower.style.height) : NaN;
    if (!(w0 > 0 && h0 > 0)) return; // Fabric's own size, in CSS pixels, is on the canvas's style
    const block = host.closest('[data-testid="stVerticalBlock"]');
    const w = Math.floor(Math.min(w0, block ? block.clientWidth : window.innerWidth));
    if (Math.abs(px(host.style, "--vd-wide-w", 0) - w) >= 2) {
      host.style.setProperty("--vd-wide-w", `${w}px`);
      host.style.setProperty("--vd-wide-h", `${Math.round((w * h0) / w0)}px`);
    }
    if (!root.querySelector("style[data-vitdemo]")) {
      const style = document.createElement("style");
      style.dataset.vitdemo = "1";
      style.textContent = WIDE_CSS;
      root.appendChild(style);
    }
  };

  const fitCanvas = (host) => {
    const root = host.shadowRoot;
    if (pressed || !root || !root.querySelector(".dc-root")) return;
    if (host.closest(".st-key-vd_wide")) return fitWide(host, root); // the Read page's: 4:1, as wide as it may be
    if (!root.querySelector("style[data-vitdemo]")) {
      const style = document.createElement("style");
      style.dataset.vitdemo = "1";
      style.textContent = SHADOW_CSS;
      root.appendChild(style);
    }
    const css = getComputedStyle(host);
    const block = host.closest('[data-testid="stVerticalBlock"]');
    const width = block ? block.clientWidth : window.innerWidth;
    let scrolled = window.scrollY; // the page's own scrolling must not change the size
    for (let el = host.parentElement; el; el = el.parentElement) scrolled += el.scrollTop;
    const top = host.getBoundingClientRect().top + scrolled;
    const gap = px(css, "--vd-canvas-gap", 12);
    const byHeight = window.innerHeight - top - spaceBelow(host) - gap - answersBelow(host, css);
    const size = Math.floor(Math.max(MIN_CANVAS_PX, Math.min(px(css, "--vd-canvas-max", 280), width, byHeight)));
    const now = px(host.style, "--vd-canvas", 0);
    if (Math.abs(now - size) >= 2) host.style.setProperty("--vd-canvas", `${size}px`);
    const pad = host.closest(".st-key-vd_pad"); // its buttons are as wide as the canvas
    const value = host.style.getPropertyValue("--vd-canvas");
    if (pad && pad.style.getPropertyValue("--vd-canvas") !== value) pad.style.setProperty("--vd-canvas", value);
    showWhenPlaced(host, root.querySelector(".dc-root"));
  };

  const hostSeen = new WeakMap(); // canvas host -> when update() first saw it
  const arriving = (host) => {
    if (!hostSeen.has(host)) hostSeen.set(host, Date.now());
    const recent = Date.now() - hostSeen.get(host) < PLACE_WAIT_MS + 1000; // after that, the 1 s timer looks
    return recent && !host.hasAttribute("data-vd-ready") && host.closest(".st-key-vd_pad") !== null;
  };
  const placed = new WeakSet(); // .dc-root elements seen where they belong
  const firstSeen = new WeakMap(); // .dc-root -> when fitCanvas first saw it
  const showWhenPlaced = (host, root) => {
    if (!placed.has(root)) {
      host.removeAttribute("data-vd-ready");
      const upper = root.querySelector("canvas.upper-canvas");
      if (!firstSeen.has(root)) firstSeen.set(root, Date.now());
      const surface = upper ? upper.getBoundingClientRect() : null;
      const inPlace = surface && surface.width > 0 && Math.abs(surface.top - host.getBoundingClientRect().top) < 2;
      if (!inPlace && Date.now() - firstSeen.get(root) < PLACE_WAIT_MS) return;
      placed.add(root);
    }
    if (!host.hasAttribute("data-vd-ready")) host.setAttribute("data-vd-ready", "");
  };

  const REBUILDS = ".st-key-pad_undo button, .st-key-clear_canvas button, [class*='st-key-pad_restore_'] button";
  const retired = new Map(); // .dc-root of a canvas being replaced -> [script runs seen then, when]
  let runsSeen = 0;
  let stoppedAt = 0; // when the app last stopped running
  const app = document.querySelector('[data-testid="stApp"]');
  const scriptState = () => (app ? app.dataset.testScriptState : "notRunning");
  if (app) {
    const onState = () => {
      if (scriptState() === "running") runsSeen += 1;
      else if (scriptState() === "notRunning") stoppedAt = Date.now();
    };
    new MutationObserver(onState).observe(app, { attributes: true, attributeFilter: ["data-test-script-state"] });
  }
  const setRetired = (root, on) => {
    if (on) retired.set(root, [runsSeen, Date.now()]);
    else retired.delete(root);
    root.dataset.vdRetired = on ? "1" : "";
    root.style.opacity = on ? "0.35" : "";
    root.style.cursor = on ? "progress" : "";
  };
  document.addEventListener(
    "click",
    (event) => {
      const button = event.target.closest ? event.target.closest(REBUILDS) : null;
      const pad = button && !button.disabled ? button.closest(".st-key-vd_pad") : null;
      if (!pad) return;
      for (const host of pad.querySelectorAll('[data-testid="stBidiComponentIsolated"]')) {
        const root = host.shadowRoot && host.shadowRoot.querySelector(".dc-root");
        if (root) setRetired(root, true);
      }
    },
    true,
  );
  const onRetired = (event) => event.composedPath().some((el) => el.dataset && el.dataset.vdRetired === "1");
  for (const type of ["pointerdown", "mousedown", "touchstart"]) {
    const refuse = (event) => {
      if (retired.size && onRetired(event)) {
        event.stopPropagation(); // the canvas never sees the press, so it draws nothing
        event.preventDefault(); // nor does a finger scroll the page
      }
    };
    document.addEventListener(type, refuse, { capture: true, passive: false });
  }
  const reviveStranded = () => {
    const now = Date.now();
    const idle = scriptState() === "notRunning" && now - stoppedAt > 500;
    for (const [root, [runs, since]] of retired) {
      if (!root.isConnected) retired.delete(root);
      else if (idle && (runsSeen > runs || now - since > 30000)) setRetired(root, false); // no new canvas came
    }
  };

  let lastPath = null;
  const collapseSidebarOnArrival = () => {
    const path = window.location.pathname + window.location.search;
    const button = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (path === lastPath || !button) return; // no sidebar yet: try again on the next change
    lastPath = path;
    const present = /\/present\/?$/.test(window.location.pathname) || /[?&]present=1/.test(window.location.search);
    if (!(present || window.innerWidth < NARROW_PX) || button.getAttribute("aria-expanded") === "false") return;
    // Streamlit remembers a click on this button as the user's choice; ours is not one, so put that back.
    const saved = Object.keys(localStorage).filter((k) => k.startsWith("stSidebarCollapsed-"));
    const before = Object.fromEntries(saved.map((k) => [k, localStorage.getItem(k)]));
    button.click();
    for (const key of Object.keys(localStorage).filter((k) => k.startsWith("stSidebarCollapsed-"))) {
      if (key in before) localStorage.setItem(key, before[key]);
      else localStorage.removeItem(key);
    }
  };

  let queued = false;
  const schedule = () => {
    if (!queued) {
      queued = true;
      window.requestAnimationFrame(update);
    }
  };
  const resized = new ResizeObserver(schedule); // content that grows without new elements (fonts, images)
  const watchMain = () => {
    const main = document.querySelector('[data-testid="stMainBlockContainer"]');
    if (main && !main.dataset.vdWatched) {
      main.dataset.vdWatched = "1";
      resized.observe(main);
    }
  };
  function update() {
    queued = false;
    watchMain();
    const hosts = document.querySelectorAll('[data-testid="stBidiComponentIsolated"]');
    for (const host of hosts) fitCanvas(host);
    collapseSidebarOnArrival();
    reviveStranded();
    if ([...hosts].some(arriving)) schedule(); // look again next frame: its shadow root fills in unobserved
  }
  new MutationObserver(schedule).observe(document.body, { childList: true, subtree: true });
  window.addEventListener("resize", schedule);
  window.setInterval(schedule, 1000); // a canvas's shadow root fills in after its host is added
  schedule();
})();
