// jose (JWT signatures and key sets) is imported once a model has a RequestAuthentication, before that model serves, and never otherwise.

type Jose = typeof import('jose')

/** The module once loadJose() has resolved (a process-wide constant from then on, as a static import would be). */
let loaded: Jose | undefined
let loading: Promise<Jose> | undefined

/** Imports jose once; the runtime awaits it before it applies a model whose RequestAuthentication needs it. */
export function loadJose(): Promise<Jose> {
  loading ??= import('jose').then((module) => {
    loaded = module
    return module
  })
  return loading
}

/** jose, for the JWT filter and its key sets: only ever called under a model that loadJose() was awaited for. */
export function jose(): Jose {
  if (loaded === undefined) throw new Error('jose is used before loadJose() resolved')
  return loaded
}
