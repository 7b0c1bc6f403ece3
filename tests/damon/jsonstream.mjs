// Splits text into the JSON documents (objects or arrays) written back to
// back in it, by string-aware bracket counting. rest is the unfinished
// tail, for a reader that keeps it for the next chunk.
export function splitDocuments(text) {
  const docs = [];
  let depth = 0, inStr = false, esc = false, start = -1, consumed = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (esc) esc = false;
      else if (c === '\\') esc = true;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '{' || c === '[') { if (depth++ === 0) start = i; }
    else if ((c === '}' || c === ']') && depth > 0 && --depth === 0) {
      docs.push(text.slice(start, i + 1));
      consumed = i + 1;
    }
  }
  return { docs, rest: text.slice(consumed) };
}
