const JSON_MEDIA_TYPE = 'application/json';

/**
 * True for `application/json`, in any case, with or without parameters (`; charset=utf-8`).
 * `application/jsonx` or `application/json-seq` are not JSON.
 */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value === JSON_MEDIA_TYPE) return true;
  if (value.length < JSON_MEDIA_TYPE.length) return false;
  if (value.slice(0, JSON_MEDIA_TYPE.length).toLowerCase() !== JSON_MEDIA_TYPE) return false;
  if (value.length === JSON_MEDIA_TYPE.length) return true;
  const next = value.charCodeAt(JSON_MEDIA_TYPE.length);
  // ';', ' ', '\t'
  return next === 59 || next === 32 || next === 9;
}
