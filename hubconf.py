"""torch.hub entrypoints, generated from the zoo registry.

``torch.hub.load(repo_dir, "titok_l32", source="local", pretrained=True)``; every registered
``arch.tag`` has an entrypoint ``arch`` (its default tag, or ``tag=...``) and ``arch__tag``.
"""
dependencies = ["torch", "torchvision", "torchaudio", "huggingface_hub", "safetensors", "einops",
                "vector_quantize_pytorch"]

import zoo as _zoo  # noqa: E402


class _Entrypoint:
    # A torch.hub entrypoint for one registry name. Its docstring (the entry's description, whose token
    # shape and codebook come from building the architecture on the meta device) is made when read, so
    # importing this file builds nothing (a property named __doc__ replaces a class docstring).

    def __init__(self, entry_name: str, registry_name: str, by_arch: bool):
        self.__name__ = self.__qualname__ = entry_name
        self._info = _zoo.get_info(registry_name)
        self._by_arch = by_arch

    def __call__(self, *, pretrained: bool = True, tag: str | None = None, **kwargs):
        name = f"{self._info.arch}.{tag}" if (self._by_arch and tag) else self._info.name
        return _zoo.create_tokenizer(name, pretrained=pretrained, **kwargs)

    @property
    def __doc__(self) -> str:
        return (f"{self._info.describe()}\n\nArgs:\n    pretrained: load the published weights "
                f"(default True).\n" + ("    tag: another tag of this architecture.\n" if self._by_arch else "")
                + "    **kwargs: passed to zoo.create_tokenizer.")


def _install_entrypoints() -> None:
    for _name in _zoo.list_tokenizers():
        _info = _zoo.get_info(_name)
        arch_entry = _info.arch
        if arch_entry not in globals():
            globals()[arch_entry] = _Entrypoint(arch_entry, _zoo.get_info(_info.arch).name, by_arch=True)
        full_entry = _name.replace(".", "__").replace("-", "_")
        globals()[full_entry] = _Entrypoint(full_entry, _name, by_arch=False)


_install_entrypoints()
