/* Talking to the service: JSON in, JSON out, and errors as plain Chinese sentences. */

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** The server's {"detail": ...} as one string (FastAPI may also send a list of errors). */
function detailOf(data) {
  if (!data || data.detail === undefined || data.detail === null) return "";
  const d = data.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((x) => (x && x.msg) || JSON.stringify(x)).join("; ");
  return JSON.stringify(d);
}

/** `method path` with an optional JSON body; resolves to the response JSON, or throws ApiError
 * (or the AbortError of `signal`). */
export async function api(method, path, body, signal) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body ? { "Content-Type": "application/json", Accept: "application/json" } : { Accept: "application/json" },
      body: body ? JSON.stringify(body) : undefined,
      signal,
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError("无法连接到服务，请稍后再试。");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const detail = detailOf(data);
    const prefix = response.status === 503 ? "服务还没有准备好" : `请求出错（${response.status}）`;
    throw new ApiError(detail ? `${prefix}：${detail}` : prefix, response.status);
  }
  if (data === null) throw new ApiError("服务返回的内容无法解析。", response.status);
  return data;
}
