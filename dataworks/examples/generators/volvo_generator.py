"""Volvo vehicle service orders (~1.5 KB each), built as BSON bytes for speed.

    dataworks generate --source user_defined/generators/volvo_generator.py --total 1000000

How it stays fast (~20 µs per document instead of ~100 µs for dict + bson.encode):
- Everything that repeats across orders is encoded once in `__init__`: dealers with their
  workshops, customers, service advisors, technicians, and a pool of priced jobs (operation
  code, labour hours, parts with quantities and prices). The pools are drawn from the run's
  seed, so every worker process builds the same pools.
- Per batch, all random numbers come from one `randbytes` call viewed as 32-bit integers.
- Per order only the varying values (order number, VIN, registration, mileage, dates,
  statuses, totals) are packed, and the pieces are joined into one BSON document.
`generate_document()` still returns a plain dict (it decodes the same bytes), so code written
for the original framework keeps working.
"""

from __future__ import annotations

from typing import Any

import bson

from dataworks import BaseDataGenerator
from dataworks.generators import bsonfast as bf

# --- reference data ------------------------------------------------------------------
MODELS = [  # model, VDS code, engines, body, years
    ("XC40", "XZK7AV", ["B3", "B4 AWD", "Recharge Twin"], "SUV", (2018, 2025)),
    ("XC60", "UZL8DV", ["B4", "B5 AWD", "T6 Recharge", "T8 Recharge"], "SUV", (2017, 2025)),
    ("XC90", "LPK5SE", ["B5 AWD", "B6 AWD", "T8 Recharge"], "SUV", (2015, 2025)),
    ("V60", "ZW5RB3", ["B4", "B5", "T6 Recharge"], "Estate", (2018, 2025)),
    ("V90", "PW1RN5", ["B4", "B5", "T8 Recharge"], "Estate", (2016, 2024)),
    ("S60", "ZA1RL7", ["B4", "B5", "T8 Recharge"], "Sedan", (2018, 2024)),
    ("S90", "PA8RL3", ["B5", "T8 Recharge"], "Sedan", (2016, 2024)),
    ("C40", "XKEDV6", ["Recharge Single", "Recharge Twin"], "Crossover", (2021, 2025)),
    ("EX30", "AS1EA1", ["Single Motor", "Twin Motor Performance"], "SUV", (2024, 2025)),
    ("EX90", "LEAEA3", ["Twin Motor", "Twin Motor Performance"], "SUV", (2024, 2025)),
]
YEAR_CODES = {y: c for y, c in zip(range(2015, 2026), "FGHJKLMNPRS")}
PLANTS = "1234AJ"  # Torslanda, Ghent, Daqing, Chengdu, ... (position 11 of the VIN)
COLORS = ["Crystal White", "Onyx Black", "Thunder Grey", "Denim Blue", "Silver Dawn",
          "Vapour Grey", "Fusion Red", "Sage Green", "Bright Dusk", "Platinum Grey"]
MARKETS = [("SE", "SEK", 0.25, ["Göteborg", "Stockholm", "Malmö", "Uppsala", "Linköping"]),
           ("NO", "NOK", 0.25, ["Oslo", "Bergen", "Trondheim", "Stavanger"]),
           ("DE", "EUR", 0.19, ["Berlin", "Hamburg", "München", "Köln", "Frankfurt"]),
           ("GB", "GBP", 0.20, ["London", "Manchester", "Leeds", "Bristol", "Glasgow"]),
           ("US", "USD", 0.07, ["Boston", "Chicago", "Austin", "Denver", "Seattle"]),
           ("NL", "EUR", 0.21, ["Amsterdam", "Utrecht", "Rotterdam", "Eindhoven"])]
FIRST = ["Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sofia", "Anders", "Emma", "Per",
         "Lena", "Nils", "Ingrid", "Oskar", "Sara", "Magnus", "Elin", "Mikael", "Ida", "Jonas",
         "Hannah", "Lukas", "Olivia", "James", "Sophie", "Daniel", "Laura", "Thomas"]
LAST = ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
        "Persson", "Svensson", "Gustafsson", "Berg", "Lindqvist", "Hansen", "Müller", "Smith",
        "Jansen", "de Vries", "Schmidt", "Brown", "Taylor", "Lindberg", "Holm", "Dahl"]
STREETS = ["Storgatan", "Kungsgatan", "Drottninggatan", "Hamngatan", "Main Street",
           "Hauptstraße", "Parkveien", "High Street", "Kerkstraat", "Vasagatan"]
BRANCHES = ["Nord", "Syd", "City", "Airport", "Centrum", "West", "East"]
OPERATIONS = [  # code, description, category, (min h, max h), part candidates
    ("17 101-2", "Annual service, small", "SERVICE", (1.0, 1.6), [0, 1, 2, 3]),
    ("17 102-2", "Annual service, large", "SERVICE", (2.0, 3.2), [0, 1, 2, 3, 4, 5]),
    ("51 612-1", "Brake pads front, replace", "BRAKES", (0.9, 1.4), [6, 7]),
    ("51 622-1", "Brake discs and pads rear, replace", "BRAKES", (1.4, 2.1), [8, 9]),
    ("39 951-3", "Software update, vehicle", "ELECTRICAL", (0.3, 0.8), []),
    ("87 241-5", "Cabin air filter, replace", "CLIMATE", (0.3, 0.5), [10]),
    ("26 121-0", "Coolant, replace", "ENGINE", (0.8, 1.3), [11]),
    ("77 311-2", "Wheel alignment, check and adjust", "CHASSIS", (0.8, 1.2), []),
    ("77 101-1", "Tyre change and balancing", "WHEELS", (0.6, 1.0), [12, 13]),
    ("36 611-4", "12V battery, replace", "ELECTRICAL", (0.4, 0.7), [14]),
    ("43 151-0", "Transmission oil, replace", "TRANSMISSION", (1.2, 1.8), [15]),
    ("85 311-1", "Wiper blades, replace", "BODY", (0.2, 0.3), [16]),
    ("37 921-7", "High-voltage battery, diagnostic", "ELECTRICAL", (1.0, 2.5), []),
    ("65 411-3", "Windscreen, replace", "BODY", (1.8, 2.6), [17, 18]),
    ("23 815-6", "Spark plugs, replace", "ENGINE", (0.7, 1.1), [19]),
    ("91 000-0", "Recall campaign R10045", "RECALL", (0.5, 1.5), [20]),
]
PARTS = [  # part number, description, unit, (min, max price in EUR)
    ("31372212", "Oil filter", "pcs", (14, 22)), ("31480748", "Engine oil 0W-20", "l", (11, 16)),
    ("32260717", "Drain plug gasket", "pcs", (1, 3)), ("31407748", "Air filter", "pcs", (28, 40)),
    ("31422065", "Fuel filter", "pcs", (35, 55)), ("31368022", "Pollen filter", "pcs", (30, 45)),
    ("32373204", "Brake pad set, front", "set", (95, 160)),
    ("31471036", "Brake wear sensor", "pcs", (18, 30)),
    ("31471033", "Brake disc, rear", "pcs", (70, 120)),
    ("32373205", "Brake pad set, rear", "set", (80, 130)),
    ("31497416", "Cabin air filter", "pcs", (35, 60)), ("31439720", "Coolant, 1 l", "l", (9, 14)),
    ("31423425", "Tyre valve", "pcs", (4, 8)), ("30748296", "Wheel weight set", "set", (3, 7)),
    ("31358365", "12V battery 70Ah", "pcs", (180, 260)),
    ("31256774", "Transmission fluid", "l", (18, 26)), ("32219812", "Wiper blade set", "set", (35, 55)),
    ("32244160", "Windscreen, heated", "pcs", (650, 1100)),
    ("31689877", "Windscreen adhesive kit", "set", (45, 70)),
    ("31422659", "Spark plug", "pcs", (16, 25)), ("32355128", "Recall kit R10045", "set", (0, 0)),
]
STATUSES = [("OPEN", 8), ("SCHEDULED", 10), ("IN_PROGRESS", 12), ("WAITING_PARTS", 5),
            ("COMPLETED", 20), ("INVOICED", 25), ("CLOSED", 20)]
ORDER_TYPES = [("SERVICE", 55), ("REPAIR", 30), ("WARRANTY", 10), ("RECALL", 5)]
PAYMENT = ["CARD", "INVOICE", "FLEET_ACCOUNT", "WARRANTY_CLAIM", "CASH"]
CHANNELS = ["ONLINE_BOOKING", "PHONE", "WALK_IN", "VOLVO_APP", "DEALER_CRM"]
NOTES = ["Customer reports noise from front axle at low speed.",
         "Check tyre pressure warning; customer waits in lounge.",
         "Loan car requested for two days.",
         "Vehicle delivered by pick-up service.",
         "Software campaign to be applied during visit.",
         "Customer asks for quote on winter tyres.",
         "Warning light for brake wear on instrument cluster.",
         "", "", ""]
DAY_MS = 86_400_000
START_MS = 1_546_300_800_000  # 2019-01-01
SPAN_S = 7 * 365 * 86_400  # seven years of orders
DRAWS = 24  # 32-bit random numbers per order


def _fuel(engine: str) -> str:
    if engine.startswith("B"):
        return "Mild hybrid petrol"
    if engine.startswith("T"):
        return "Plug-in hybrid"
    return "Electric"


def _weighted(items: list[tuple[str, int]]) -> list[str]:
    return [name for name, weight in items for _ in range(weight)]


class VolvoServiceOrderGenerator(BaseDataGenerator):
    """Realistic Volvo workshop service orders; about 1.5 KB of BSON each."""

    name = "volvo-service-orders"

    DEALERS = 400
    CUSTOMERS = 4000
    JOB_VARIANTS = 3000
    ADVISORS = 600

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self._build_pools()

    # --- pools, encoded once -------------------------------------------------------
    def _build_pools(self) -> None:
        r = self.random
        self.dealers: list[tuple[bytes, int]] = []  # (encoded element value, market index)
        for n in range(self.DEALERS):
            m = r.randrange(len(MARKETS))
            code, currency, _, cities = MARKETS[m]
            city = r.choice(cities)
            dealer_id = f"{code}-{10000 + n * 7:05d}"
            dealer = {
                "dealerId": dealer_id,
                "name": f"Volvo Car {city}" + ("" if n % 3 else f" {r.choice(BRANCHES)}"),
                "market": code,
                "region": f"{code}-{r.randint(1, 9)}",
                "workshop": {
                    "workshopId": f"{dealer_id}-W{r.randint(1, 3)}",
                    "name": f"{city} Service Centre",
                    "bays": r.randint(4, 24),
                    "certifiedEv": r.random() < 0.7,
                },
            }
            self.dealers.append((bson.encode(dealer), m))
        self.customers: list[bytes] = []
        for n in range(self.CUSTOMERS):
            first, last = r.choice(FIRST), r.choice(LAST)
            code, _, _, cities = MARKETS[r.randrange(len(MARKETS))]
            fleet = r.random() < 0.18
            customer = {
                "customerId": f"C-{r.randrange(10**8):08d}",
                "type": "FLEET" if fleet else "PRIVATE",
                "name": f"{first} {last}",
                "company": f"{last} Logistics AB" if fleet else None,
                "email": f"{first}.{last}{n % 97}@example.com".lower().replace(" ", ""),
                "phone": f"+{r.randint(10, 99)} {r.randint(70, 79)} {r.randint(100, 999)} "
                         f"{r.randint(10, 99)} {r.randint(10, 99)}",
                "address": {"street": f"{r.choice(STREETS)} {r.randint(1, 120)}",
                            "postalCode": f"{r.randint(10000, 99999)}",
                            "city": r.choice(cities), "country": code},
                "preferredLanguage": {"SE": "sv", "NO": "nb", "DE": "de", "NL": "nl"}.get(code, "en"),
                "marketingConsent": r.random() < 0.4,
            }
            self.customers.append(bson.encode(customer))
        self.advisors = [
            bf.document(bf.element("employeeId", f"E{r.randrange(10**6):06d}")
                        + bf.element("name", f"{r.choice(FIRST)} {r.choice(LAST)}"))
            for _ in range(self.ADVISORS)
        ]
        # Jobs: encoded documents plus their labour hours and parts total (for the totals).
        self.jobs: list[tuple[bytes, float, float]] = []
        for _ in range(self.JOB_VARIANTS):
            code, text, category, (lo, hi), candidates = r.choice(OPERATIONS)
            hours = round(r.uniform(lo, hi), 1)
            parts = []
            parts_total = 0.0
            for p in sorted(r.sample(candidates, k=r.randint(min(1, len(candidates)), min(3, len(candidates))))):
                number, description, unit, (plo, phi) = PARTS[p]
                quantity = r.randint(4, 6) if unit == "l" else r.randint(1, 2)
                price = round(r.uniform(plo, phi), 2)
                line = round(quantity * price, 2)
                parts_total += line
                parts.append({"partNumber": number, "description": description,
                              "quantity": quantity, "unit": unit, "unitPrice": price,
                              "lineTotal": line})
            job = {"operationCode": code, "description": text, "category": category,
                   "labourHours": hours, "technicianId": f"T{r.randrange(10**5):05d}",
                   "parts": parts}
            self.jobs.append((bson.encode(job), hours, round(parts_total, 2)))
        self.vehicle_kinds: list[tuple[bytes, str, str, int, int]] = []
        for model, vds, engines, body, (y0, y1) in MODELS:
            for engine in engines:
                fuel = _fuel(engine)
                head = (bf.element("model", model) + bf.element("engine", engine)
                        + bf.element("fuelType", fuel) + bf.element("bodyType", body))
                self.vehicle_kinds.append((head, vds[:5], "", y0, y1))
        self.statuses = _weighted(STATUSES)
        self.order_types = _weighted(ORDER_TYPES)
        self.colors = [bf.string_value(c) for c in COLORS]
        self.notes = [bf.string_value(n) for n in NOTES]
        self.payments = [bf.string_value(p) for p in PAYMENT]
        self.channels = [bf.string_value(c) for c in CHANNELS]
        self.status_values = [bf.string_value(s) for s in self.statuses]
        self.type_values = [bf.string_value(t) for t in self.order_types]

    # --- the hot loop ----------------------------------------------------------------
    def encode_batch(self, start: int, count: int) -> list[bytes]:
        """`count` orders as BSON; one `randbytes` call feeds every random choice."""
        u = memoryview(self.random.randbytes(count * DRAWS * 4)).cast("I")
        p32, p64, pf, sv = bf.pack_i32, bf.pack_i64, bf.pack_f64, bf.string_value
        dealers, customers, advisors, jobs = self.dealers, self.customers, self.advisors, self.jobs
        kinds, colors, notes = self.vehicle_kinds, self.colors, self.notes
        statuses, types = self.status_values, self.type_values
        payments, channels = self.payments, self.channels
        n_dealers, n_customers, n_advisors = len(dealers), len(customers), len(advisors)
        n_jobs, n_kinds, n_colors, n_notes = len(jobs), len(kinds), len(colors), len(notes)
        n_status, n_types = len(statuses), len(types)
        job_key = [bf.array_key(bf.T_DOCUMENT, i) for i in range(4)]
        vin_chars = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
        out = []
        append = out.append
        for i in range(count):
            o = i * DRAWS
            index = start + i
            dealer, market = dealers[u[o] % n_dealers]
            _, currency, vat, _ = MARKETS[market]
            head, vds, _, y0, y1 = kinds[u[o + 1] % n_kinds]
            year = y0 + u[o + 2] % (y1 - y0 + 1)
            serial = u[o + 3] % 1_000_000
            vin = f"YV1{vds}{vin_chars[u[o + 4] % 10 + 23]}{YEAR_CODES[year]}" \
                  f"{PLANTS[u[o + 5] % 6]}{serial:06d}"
            reg = f"{vin_chars[u[o + 6] % 23]}{vin_chars[u[o + 7] % 23]}" \
                  f"{vin_chars[u[o + 8] % 23]} {u[o + 9] % 900 + 100}"
            mileage = (2025 - year) * 12_000 + u[o + 10] % 25_000 + 400
            n = 1 + (u[o + 11] % 3 == 0) + (u[o + 12] % 5 == 0)
            labour_h = 0.0
            parts_sum = 0.0
            job_parts = []
            for j in range(n):
                encoded, hours, parts_total = jobs[u[o + 13 + j] % n_jobs]
                job_parts.append(job_key[j] + encoded)
                labour_h += hours
                parts_sum += parts_total
            rate = 95.0 + (u[o + 17] % 60)
            labour = round(labour_h * rate, 2)
            discount = round((parts_sum + labour) * (u[o + 18] % 4) * 0.05, 2)
            net = parts_sum + labour - discount
            tax = round(net * vat, 2)
            created = START_MS + (u[o + 19] % SPAN_S) * 1000 + u[o + 20] % 1000
            scheduled = created + (1 + u[o + 21] % 14) * DAY_MS
            status = statuses[u[o + 22] % n_status]
            done = status in _DONE_VALUES
            completed = scheduled + (u[o + 23] % 480) * 60_000
            jobs_body = b"".join(job_parts)
            vehicle = b"".join((
                _K_VIN, sv(vin), head, _K_YEAR, p32(year), _K_COLOR, colors[u[o + 6] % n_colors],
                _K_REG, sv(reg), _K_MILEAGE, p32(mileage),
            ))
            totals = b"".join((
                _K_LABOUR_H, pf(round(labour_h, 1)), _K_RATE, pf(rate), _K_LABOUR, pf(labour),
                _K_PARTS, pf(round(parts_sum, 2)), _K_DISCOUNT, pf(discount),
                _K_TAX, pf(tax), _K_TOTAL, pf(round(net + tax, 2)), _K_CURRENCY, _CURRENCY[currency],
            ))
            body = b"".join((
                _K_ORDER, sv(f"SO-{index:010d}"),
                _K_TYPE, types[u[o + 12] % n_types],
                _K_STATUS, status,
                _K_CHANNEL, channels[u[o + 9] % 5],
                _K_VEHICLE, p32(len(vehicle) + 5), vehicle, b"\x00",
                _K_DEALER, dealer,
                _K_CUSTOMER, customers[u[o + 14] % n_customers],
                _K_ADVISOR, advisors[u[o + 15] % n_advisors],
                _K_JOBS, p32(len(jobs_body) + 5), jobs_body, b"\x00",
                _K_TOTALS, p32(len(totals) + 5), totals, b"\x00",
                _K_PAYMENT, payments[u[o + 16] % 5],
                _K_WARRANTY, b"\x01" if u[o + 18] % 10 == 0 else b"\x00",
                _K_NOTES, notes[u[o + 20] % n_notes],
                _K_CREATED, p64(created),
                _K_SCHEDULED, p64(scheduled),
                *((_K_COMPLETED, p64(completed)) if done else (_K_COMPLETED_NULL,)),
                _K_UPDATED, p64(completed if done else scheduled),
                _K_VERSION, p32(1 + u[o + 21] % 7),
            ))
            append(p32(len(body) + 5) + body + b"\x00")
        return out

    def generate_document(self, document_id: int | None = None) -> dict[str, Any]:
        """One order as a dict (the original framework's API): decodes the fast bytes."""
        return bson.decode(self.encode_batch(document_id or 0, 1)[0])

    def generate_batch(self, start: int, count: int) -> list[dict[str, Any]]:
        return [bson.decode(doc) for doc in self.encode_batch(start, count)]


_DONE_VALUES = {bf.string_value(s) for s in ("COMPLETED", "INVOICED", "CLOSED")}
_CURRENCY = {m[1]: bf.string_value(m[1]) for m in MARKETS}
_K_ORDER = bf.key(bf.T_STRING, "orderNumber")
_K_TYPE = bf.key(bf.T_STRING, "orderType")
_K_STATUS = bf.key(bf.T_STRING, "status")
_K_CHANNEL = bf.key(bf.T_STRING, "bookingChannel")
_K_VEHICLE = bf.key(bf.T_DOCUMENT, "vehicle")
_K_VIN = bf.key(bf.T_STRING, "vin")
_K_YEAR = bf.key(bf.T_INT32, "modelYear")
_K_COLOR = bf.key(bf.T_STRING, "color")
_K_REG = bf.key(bf.T_STRING, "registrationNumber")
_K_MILEAGE = bf.key(bf.T_INT32, "mileageKm")
_K_DEALER = bf.key(bf.T_DOCUMENT, "dealer")
_K_CUSTOMER = bf.key(bf.T_DOCUMENT, "customer")
_K_ADVISOR = bf.key(bf.T_DOCUMENT, "serviceAdvisor")
_K_JOBS = bf.key(bf.T_ARRAY, "jobs")
_K_TOTALS = bf.key(bf.T_DOCUMENT, "totals")
_K_LABOUR_H = bf.key(bf.T_DOUBLE, "labourHours")
_K_RATE = bf.key(bf.T_DOUBLE, "labourRate")
_K_LABOUR = bf.key(bf.T_DOUBLE, "labourAmount")
_K_PARTS = bf.key(bf.T_DOUBLE, "partsAmount")
_K_DISCOUNT = bf.key(bf.T_DOUBLE, "discount")
_K_TAX = bf.key(bf.T_DOUBLE, "tax")
_K_TOTAL = bf.key(bf.T_DOUBLE, "total")
_K_CURRENCY = bf.key(bf.T_STRING, "currency")
_K_PAYMENT = bf.key(bf.T_STRING, "paymentMethod")
_K_WARRANTY = bf.key(bf.T_BOOL, "warrantyClaim")
_K_NOTES = bf.key(bf.T_STRING, "notes")
_K_CREATED = bf.key(bf.T_DATETIME, "createdAt")
_K_SCHEDULED = bf.key(bf.T_DATETIME, "scheduledAt")
_K_COMPLETED = bf.key(bf.T_DATETIME, "completedAt")
_K_COMPLETED_NULL = bf.key(bf.T_NULL, "completedAt")
_K_UPDATED = bf.key(bf.T_DATETIME, "updatedAt")
_K_VERSION = bf.key(bf.T_INT32, "revision")
