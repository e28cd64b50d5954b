"""The shape of the price catalogue (built from the model records,
``providers/<vendor>/models.json``, and of override files), validated by pydantic.

Every vendor, model and credit rate names its ``source`` and the date of that source (``as_of``);
entries changed by an override also carry ``override`` (who changed them, and when). Prices are
in ``unit`` (USD, or the vendor's credits converted with ``credit.usd``). See ``docs/cost.md``.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Tier = Literal["draft", "standard", "final"]
TIERS: tuple[Tier, ...] = ("draft", "standard", "final")
Status = Literal["active", "preview", "deprecated", "shut_down"]
Unit = Literal["usd", "credits"]
#: ``{size key: {quality key: price}}``; a size key is ``"WxH"`` or ``"*"`` (any size).
PriceTable = dict[str, dict[str, float]]


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Override(_Entry):
    """Provenance of a change made on top of the built-in data."""

    source: str
    as_of: date | None = None


class TokenRates(_Entry):
    """USD per million tokens. ``None``: no published rate."""

    text_in: float | None = Field(default=None, ge=0)
    text_in_cached: float | None = Field(default=None, ge=0)
    image_in: float | None = Field(default=None, ge=0)
    image_in_cached: float | None = Field(default=None, ge=0)
    image_out: float | None = Field(default=None, ge=0)
    text_out: float | None = Field(default=None, ge=0)


class CreditRate(_Entry):
    """What one vendor credit costs in USD."""

    usd: float = Field(gt=0)
    derived: bool = False
    source: str = Field(min_length=1)
    as_of: date
    note: str | None = None
    override: Override | None = None


def _check_table(table: PriceTable) -> PriceTable:
    for size, row in table.items():
        for quality, price in row.items():
            if price < 0:
                raise ValueError(f"price for {size}/{quality} is negative ({price})")
    return table


def _check_tiers(tiers: dict[Tier, str] | None) -> dict[Tier, str] | None:
    if tiers is not None and set(tiers) != set(TIERS):
        raise ValueError(f"must map all of {', '.join(TIERS)} (got {', '.join(tiers)})")
    return tiers


class ModelPrice(_Entry):
    """Prices of one model. Lookups prefer ``flat_usd_per_image``, then ``per_image``, then
    ``per_pixel``, then ``output_tokens`` x ``tokens_per_1m.image_out``."""

    source: str = Field(min_length=1)
    as_of: date
    status: Status = "active"
    shutdown: date | None = None
    aliases: tuple[str, ...] = ()
    unit: Unit | None = None  # None: the vendor's unit
    per_image: PriceTable = {}
    per_image_batch: PriceTable = {}  # the vendor's batch API (``--vendor-batch``)
    batch_source: str | None = None  # where ``per_image_batch`` comes from (else ``source``)
    batch_as_of: date | None = None
    per_pixel: dict[str, float] = {}  # quality key -> price per pixel, in unit
    tokens_per_1m: TokenRates | None = None
    output_tokens: dict[str, dict[str, int]] = {}  # size key -> quality key -> tokens per image
    image_input_tokens: int | None = Field(default=None, ge=0)
    quality_tiers: dict[Tier, str] | None = None  # None: the vendor's mapping
    flat_usd_per_image: float | None = Field(default=None, ge=0)
    price_factor: float = Field(default=1.0, gt=0)
    derived: bool = False
    note: str | None = None
    override: Override | None = None

    _tables = field_validator("per_image", "per_image_batch")(_check_table)
    _tiers = field_validator("quality_tiers")(_check_tiers)

    @field_validator("per_pixel")
    @classmethod
    def _per_pixel(cls, v: dict[str, float]) -> dict[str, float]:
        if any(p < 0 for p in v.values()):
            raise ValueError("per-pixel prices must not be negative")
        return v

    @property
    def priced(self) -> bool:
        """Whether ``estimate`` can price this model without a vendor report."""
        return bool(self.flat_usd_per_image is not None or self.per_image or self.per_pixel
                    or (self.output_tokens and self.tokens_per_1m is not None
                        and self.tokens_per_1m.image_out is not None))


class VendorPrices(_Entry):
    """One vendor: its models, the tier mapping they share, and (for credit vendors) the rate."""

    source: str = Field(min_length=1)
    as_of: date
    aliases: tuple[str, ...] = ()
    default_model: str | None = None
    unit: Unit = "usd"
    quality_tiers: dict[Tier, str]
    size_classes: dict[str, int] = {}  # resolution class -> nominal side in pixels
    credit: CreditRate | None = None
    price_factor: float = Field(default=1.0, gt=0)
    note: str | None = None
    override: Override | None = None
    models: dict[str, ModelPrice]

    _tiers = field_validator("quality_tiers")(_check_tiers)

    @model_validator(mode="after")
    def _consistent(self) -> VendorPrices:
        if self.default_model is not None and self.default_model not in self.models:
            raise ValueError(f"default_model {self.default_model!r} is not among its models")
        uses_credits = self.unit == "credits" or any(
            m.unit == "credits" for m in self.models.values())
        if uses_credits and self.credit is None:
            raise ValueError("prices in credits need a credit rate ('credit': {'usd': ...})")
        return self


class CatalogueData(_Entry):
    """The whole catalogue file."""

    schema_version: Literal[1]
    compiled: date
    currency: Literal["USD"]
    source: str = Field(min_length=1)
    note: str | None = None
    vendors: dict[str, VendorPrices]
