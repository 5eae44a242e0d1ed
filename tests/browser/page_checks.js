// What a person would see as sideways scrolling or spilled text, measured in the page.
// test_page_quality.py evaluates this file and turns its answer into failure messages.
() => {
  const NATIVE = new Set(["input", "textarea", "select", "img", "svg", "canvas", "video", "iframe"]);
  const root = document.documentElement;

  function selector(element) {
    const parts = [];
    for (let node = element; node && node.nodeType === 1 && parts.length < 4; node = node.parentElement) {
      let part = node.localName;
      if (node.id) {
        parts.unshift(`${part}#${node.id}`);
        break;
      }
      const classes = [...node.classList].slice(0, 3);
      if (classes.length) part += `.${classes.join(".")}`;
      const parent = node.parentElement;
      if (parent) {
        const same = [...parent.children].filter((child) => child.localName === node.localName);
        if (same.length > 1) part += `:nth-of-type(${same.indexOf(node) + 1})`;
      }
      parts.unshift(part);
    }
    return parts.join(" > ");
  }

  function text(element) {
    const words = (element.innerText || element.textContent || "").replace(/\s+/g, " ").trim();
    return words.length > 50 ? `${words.slice(0, 47)}...` : words;
  }

  // A visually hidden (screen reader only) box: clipped away, or one pixel with overflow hidden.
  function clippedAway(element, style) {
    if (style.clip === "rect(0px, 0px, 0px, 0px)" || style.clipPath === "inset(50%)") return true;
    const box = element.getBoundingClientRect();
    return (box.width <= 1 || box.height <= 1) && style.overflowX !== "visible";
  }
  const clipped = [...document.body.querySelectorAll("*")].filter((element) =>
    clippedAway(element, getComputedStyle(element)),
  );

  // Not drawn, or inside a visually hidden box (a stacked table's header row).
  function unseen(element, style) {
    if (!element.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: true })) return true;
    const box = element.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1 || clippedAway(element, style)) return true;
    return clipped.some((hidden) => hidden.contains(element));
  }

  // The descendant reaching furthest right: what makes `element` too wide.
  function widest(element) {
    let best = null;
    let right = element.getBoundingClientRect().right;
    for (const child of element.querySelectorAll("*")) {
      const box = child.getBoundingClientRect();
      if (box.width > 0 && box.right > right + 1) {
        right = box.right;
        best = child;
      }
    }
    return best;
  }

  function entry(element) {
    const cause = widest(element);
    return {
      selector: selector(element),
      scrollWidth: element.scrollWidth,
      clientWidth: element.clientWidth,
      text: text(element),
      cause: cause ? `${selector(cause)} "${text(cause)}"` : "",
    };
  }

  const spills = [];
  const scrolls = [];
  for (const element of document.body.querySelectorAll("*")) {
    if (!(element instanceof HTMLElement) || NATIVE.has(element.localName)) continue;
    if (element.scrollWidth <= element.clientWidth + 1) continue; // rounding
    const style = getComputedStyle(element);
    if (unseen(element, style)) continue;
    const overflow = style.overflowX;
    if (overflow === "hidden" || overflow === "clip") continue; // clipped on purpose (ellipsis)
    if (overflow === "auto" || overflow === "scroll") scrolls.push(element);
    // An icon a pixel or two past its box (Swagger UI's chevrons) is not spilled text.
    else if (element.scrollWidth > element.clientWidth + 2) spills.push(element);
  }
  // An overflow shows on every ancestor up to the page: name only the innermost boxes.
  const innermost = (found) =>
    found.filter((element) => !found.some((other) => other !== element && element.contains(other)));
  const body = document.body;
  return {
    scrollWidth: root.scrollWidth,
    innerWidth: window.innerWidth,
    // overflow-x: hidden on html or body hides the page's overflow rather than fixing it.
    bodyClipped: body.scrollWidth > body.clientWidth + 1 && getComputedStyle(body).overflowX !== "visible",
    spills: innermost(spills).map(entry),
    scrolls: innermost(scrolls).map(entry),
  };
}
